// The two series colours of every chart (training loss or HR@k, and validation NDCG@k or the second stage),
// for charts drawn from script. styles.css names the same colours --accent and --heldout.
export const ACCENT_COLOR = '#3b6fd8';
export const HELDOUT_COLOR = '#c2710c';
/** A third series (the Backbones view's stage 0); styles.css's --hit. */
export const THIRD_COLOR = '#1f8a4c';
