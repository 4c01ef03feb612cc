"""Writing the avatar: its meshes and take (`avatar`), glTF binary (`glb`, `gltf`), VRM and VRM
Animation, BVH, Live Link Face CSV (`formats` is the table of engine formats), previews."""
