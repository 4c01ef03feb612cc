"""A whole take into a session folder: one video (`single_camera`), several calibrated cameras
(`multi_camera`), either of them by the command's arguments (`recorded_take`), or a batch of takes
(`batch_runner`); every stage after tracking (`stages.finish_session`)."""
