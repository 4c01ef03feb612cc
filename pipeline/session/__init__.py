"""A whole take into a session folder: one video, several calibrated cameras, or a batch of
takes; every stage after tracking (`stages.finish_session`)."""
