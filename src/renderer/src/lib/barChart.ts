// The data and scale rules of components/BarChart.svelte (grouped bars): shared with the exported figure.
export { niceMax, wrapLabel, type BarGroup, type BarSeries } from '../../../shared/figures/bars';
