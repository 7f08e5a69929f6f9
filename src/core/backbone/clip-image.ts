// CLIPImageProcessor's preprocessing for llava-hf vision towers: resize the shortest side to the tower's
// image size, centre-crop a square, scale to [0, 1] and normalise with CLIP's mean/std, channels first.
// transformers resizes bicubically; tfjs has bilinear only, so pixels differ slightly from the Python
// processor (features stay close; the parity tests feed pixel_values directly and are unaffected).
import * as tf from '@tensorflow/tfjs-core';
import type { RgbImage } from '../vision/image-decode';

const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

/** Images → pixel_values [N, 3, size, size]. */
export function clipPixelValues(images: readonly RgbImage[], size: number): tf.Tensor4D {
  return tf.tidy(() => {
    const each = images.map((img) => {
      const scale = size / Math.min(img.width, img.height);
      const h = Math.max(size, Math.round(img.height * scale));
      const w = Math.max(size, Math.round(img.width * scale));
      const rgb = tf.tensor3d(Float32Array.from(img.data), [img.height, img.width, 3]);
      const resized = tf.image.resizeBilinear(rgb, [h, w], true);
      const top = Math.floor((h - size) / 2);
      const left = Math.floor((w - size) / 2);
      const crop = tf.slice(resized, [top, left, 0], [size, size, 3]);
      const norm = tf.div(tf.sub(tf.div(crop, 255), tf.tensor1d(CLIP_MEAN)), tf.tensor1d(CLIP_STD));
      return tf.transpose(norm, [2, 0, 1]);
    });
    return tf.stack(each) as tf.Tensor4D;
  });
}
