// Reads a VRM 1.0 avatar (and optionally a VRM Animation) the way a web app does: three.js
// GLTFLoader with pixiv's VRMLoaderPlugin / VRMAnimationLoaderPlugin (@pixiv/three-vrm), in plain
// Node (no browser, no WebGL). Reports what the loaders understood, as JSON:
//   meta, humanoid bones (-> node names), expressions (preset/custom, morph binds by target name),
//   lookAt; with --vrma: the animation's humanoid / expression / lookAt tracks, then plays it on
//   the avatar (createVRMAnimationClip + AnimationMixer + vrm.update) and samples, at each time
//   of --times, every humanoid bone's local rotation, the hips position, every expression's value,
//   the head's morph target influences (by name) and the lookAt yaw/pitch.
// usage: node vrm_check.mjs --vrm FILE [--vrma FILE] [--times 0,0.5,1] --out OUT.json
import fs from 'node:fs';
import * as THREE from 'three';
import { GLTFLoader } from 'three/examples/jsm/loaders/GLTFLoader.js';
import { VRMLoaderPlugin } from '@pixiv/three-vrm';
import { VRMAnimationLoaderPlugin, VRMLookAtQuaternionProxy, createVRMAnimationClip } from '@pixiv/three-vrm-animation';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
if (!args.vrm || !args.out) {
  console.error('usage: node vrm_check.mjs --vrm FILE [--vrma FILE] [--times 0,0.5] --out OUT.json');
  process.exit(2);
}
const result = { ok: false, messages: [] };
for (const level of ['log', 'info', 'warn', 'error']) {
  console[level] = (...a) => result.messages.push({ level, text: a.map(String).join(' ').slice(0, 400) });
}
globalThis.self ??= globalThis;
// Embedded images: GLTFLoader (with `self` and createImageBitmap defined) fetch()es each image's
// blob: URL and hands the Blob to createImageBitmap, which decodes it here (PNG: pngjs, JPEG:
// jpeg-js) as a browser would; what was decoded is reported in result.images.
result.images = [];
globalThis.createImageBitmap = async function createImageBitmap(blob) {
  const bytes = Buffer.from(await blob.arrayBuffer());
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  let img;
  if (bytes[0] === 0x89 && bytes[1] === 0x50) img = require('pngjs').PNG.sync.read(bytes);
  else if (bytes[0] === 0xff && bytes[1] === 0xd8) img = require('jpeg-js').decode(bytes, { useTArray: true, maxMemoryUsageInMB: 1024 });
  else throw new Error(`cannot decode image of type ${blob.type}`);
  result.images.push({ mimeType: blob.type, width: img.width, height: img.height });
  return { width: img.width, height: img.height, close() {} };
};

function toArrayBuffer(path) {
  const b = fs.readFileSync(path);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
}
function parse(loader, path) {
  return new Promise((resolve, reject) => loader.parse(toArrayBuffer(path), '', resolve, reject));
}
const round = (x) => Math.round(x * 1e7) / 1e7;

try {
  const loader = new GLTFLoader();
  loader.register((parser) => new VRMLoaderPlugin(parser));
  loader.register((parser) => new VRMAnimationLoaderPlugin(parser));
  const gltf = await parse(loader, args.vrm);
  const vrm = gltf.userData.vrm;
  if (!vrm) throw new Error('VRMLoaderPlugin found no VRM in ' + args.vrm);
  const m = vrm.meta;
  result.meta = { metaVersion: m.metaVersion, name: m.name, version: m.version, authors: m.authors,
    licenseUrl: m.licenseUrl, avatarPermission: m.avatarPermission, commercialUsage: m.commercialUsage };
  result.humanBones = {};
  for (const [name, bone] of Object.entries(vrm.humanoid.humanBones)) {
    if (bone && bone.node) result.humanBones[name] = bone.node.name;
  }
  const em = vrm.expressionManager;
  const describe = (e) => ({
    isBinary: e.isBinary,
    binds: e._binds.filter((b) => b.primitives).map((b) => {
      const prim = b.primitives[0];
      const dict = prim.morphTargetDictionary || {};
      const target = Object.keys(dict).find((k) => dict[k] === b.index);
      return { mesh: prim.name, index: b.index, target, weight: b.weight };
    }),
  });
  result.expressions = { preset: {}, custom: {} };
  for (const [name, e] of Object.entries(em.presetExpressionMap)) result.expressions.preset[name] = describe(e);
  for (const [name, e] of Object.entries(em.customExpressionMap)) result.expressions.custom[name] = describe(e);
  result.materials = [];
  vrm.scene.traverse((o) => {
    if (!o.isMesh) return;
    for (const mat of [].concat(o.material)) {
      const img = mat.map && mat.map.image;
      result.materials.push({ mesh: o.name, material: mat.name,
        map: img ? { width: img.width, height: img.height } : null });
    }
  });
  const la = vrm.lookAt;
  result.lookAt = la && { offsetFromHeadBone: la.offsetFromHeadBone.toArray(), applier: la.applier.constructor.type || la.applier.constructor.name };

  if (args.vrma) {
    const ag = await parse(loader, args.vrma);
    const anims = ag.userData.vrmAnimations;
    if (!anims || !anims.length) throw new Error('VRMAnimationLoaderPlugin found no VRM animation in ' + args.vrma);
    const va = anims[0];
    result.vrma = {
      duration: va.duration,
      restHipsPosition: va.restHipsPosition.toArray(),
      rotationTracks: [...va.humanoidTracks.rotation.keys()],
      translationTracks: [...va.humanoidTracks.translation.keys()],
      presetTracks: [...va.expressionTracks.preset.keys()],
      customTracks: [...va.expressionTracks.custom.keys()],
      lookAtTrack: va.lookAtTrack != null,
    };
    if (vrm.lookAt) {
      const proxy = new VRMLookAtQuaternionProxy(vrm.lookAt);
      proxy.name = 'VRMLookAtQuaternionProxy';
      vrm.scene.add(proxy);
    }
    const clip = createVRMAnimationClip(va, vrm);
    const mixer = new THREE.AnimationMixer(vrm.scene);
    mixer.clipAction(clip).play();
    result.clip = { duration: clip.duration, tracks: clip.tracks.length };
    const times = (args.times || '0').split(',').map(Number);
    const headMesh = [];
    vrm.scene.traverse((o) => { if (o.morphTargetDictionary && o.morphTargetInfluences) headMesh.push(o); });
    result.samples = [];
    for (const t of times) {
      mixer.setTime(t);
      vrm.update(0);
      const s = { t, bones: {}, normalized: {}, expressions: {}, morphs: {} };
      for (const name of Object.keys(result.humanBones)) {
        s.bones[name] = vrm.humanoid.getRawBoneNode(name).quaternion.toArray().map(round);
        s.normalized[name] = vrm.humanoid.getNormalizedBoneNode(name).quaternion.toArray().map(round);
      }
      s.hipsPosition = vrm.humanoid.getRawBoneNode('hips').position.toArray().map(round);
      for (const e of em.expressions) s.expressions[e.expressionName] = round(em.getValue(e.expressionName));
      if (headMesh.length) {
        const mesh = headMesh[0];
        for (const [k, i] of Object.entries(mesh.morphTargetDictionary)) s.morphs[k] = round(mesh.morphTargetInfluences[i]);
      }
      s.lookAt = la ? { yaw: round(la.yaw), pitch: round(la.pitch) } : null;
      result.samples.push(s);
    }
  }
  result.ok = true;
} catch (e) {
  result.error = String((e && e.stack) || e).split('\n').slice(0, 6).join('\n');
}
fs.writeFileSync(args.out, JSON.stringify(result));
process.exit(0);
