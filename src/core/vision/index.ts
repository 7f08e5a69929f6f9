export { ENCODER_DIM, ENCODER_ID, ENCODER_INPUT_SIZE, loadImageEncoder, type ImageEncoder } from './encoder';
export { encodeItemImages, loadItemFeatures, type EncodeSummary } from './features';
export { readFeatures, writeFeatures } from './feature-store';
export { decodeRgb, type RgbImage } from './image-decode';
