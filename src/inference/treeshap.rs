//! Why the model scored a row as it did: exact TreeSHAP feature
//! contributions, the path-dependent algorithm of Lundberg, Erion and Lee
//! ("Consistent Individualized Feature Attribution for Tree Ensembles",
//! Algorithm 2), which is what xgboost's `predict(pred_contribs=True)`
//! computes on the CPU.
//!
//! A row's contributions, one per feature plus a bias, sum to its margin
//! (log-odds): the bias is the base margin plus each tree's expected value
//! (the cover-weighted mean of its leaves), and a feature's contribution is
//! its Shapley value with "absent" features marginalised over the training
//! cover (`sum_hessian`) of each branch. A missing value follows the
//! split's default direction, as in scoring. The algorithm is xgboost's, in
//! `f64` (xgboost uses `f32`; the parity test allows 1e-5).
//!
//! The cost is O(trees × leaves × depth²) per row, some hundred times a
//! plain prediction, so the worker explains POSITIVE rows only. Two things
//! keep the constant down without changing the algorithm (bench/README.md
//! has the figures): the ratios of path lengths that xgboost divides by at
//! every step are tabled per depth once per forest ([`DepthFactors`]), and
//! at a leaf the features the row does not follow (`one_fraction` 0), whose
//! unwound sums differ only by a factor, share one sum. Results differ from
//! the step-for-step arithmetic by rounding only (a few ulps).

/// One node of a tree, in the tree's own index space.
#[derive(Debug, Clone, Copy)]
struct ShapNode {
    /// The feature a split tests; unused in a leaf.
    feature: u32,
    /// The split condition (go left if `x < threshold`), or a leaf's value.
    value: f32,
    /// Children; [`LEAF`] in a leaf.
    left: u32,
    right: u32,
    /// Where a missing value goes.
    default_left: bool,
    /// The training rows' hessian sum that reached the node (`sum_hessian`):
    /// how often each branch is taken when a feature is "absent".
    cover: f64,
}

const LEAF: u32 = u32::MAX;

/// One tree: its nodes (root first) and depth.
#[derive(Debug, Clone)]
struct ShapTree {
    nodes: Vec<ShapNode>,
    depth: usize,
}

/// The trees of a model, ready to explain rows.
#[derive(Debug, Clone)]
pub struct ShapForest {
    trees: Vec<ShapTree>,
    /// Bias: the base margin plus every tree's expected value.
    expected_margin: f64,
    /// Path buffer size for the deepest tree (xgboost's `maxd·(maxd+1)/2`).
    path_len: usize,
    /// The ratios the path updates multiply by, per path depth (index `d`
    /// for a path of `d + 1` elements), so no step divides.
    factors: Vec<DepthFactors>,
}

/// For a path of depth `d` (`d + 1` elements) and each `i < d`, the ratios
/// xgboost's path updates divide out at every step: `(i+1)/(d+1)`,
/// `(d-i)/(d+1)` and their inverses.
#[derive(Debug, Clone)]
struct DepthFactors {
    /// `(i + 1) / (d + 1)`: how much of element `i`'s weight moves up a
    /// subset size when a followed feature is added.
    rise: Vec<f64>,
    /// `(d - i) / (d + 1)`: how much stays when any feature is added.
    fall: Vec<f64>,
    /// `(d + 1) / (i + 1)`.
    inv_rise: Vec<f64>,
    /// `(d + 1) / (d - i)`.
    inv_fall: Vec<f64>,
}

impl DepthFactors {
    fn new(d: usize) -> DepthFactors {
        let d1 = (d + 1) as f64;
        let (mut rise, mut fall, mut inv_rise, mut inv_fall) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in 0..d {
            let (up, down) = ((i + 1) as f64, (d - i) as f64);
            rise.push(up / d1);
            fall.push(down / d1);
            inv_rise.push(d1 / up);
            inv_fall.push(d1 / down);
        }
        DepthFactors {
            rise,
            fall,
            inv_rise,
            inv_fall,
        }
    }
}

/// One tree's arrays, as in the JSON model (validated by the caller:
/// same lengths, children after their parent, features in range).
pub struct TreeArrays<'a> {
    pub left_children: &'a [i64],
    pub right_children: &'a [i64],
    pub split_indices: &'a [i64],
    pub split_conditions: &'a [f32],
    pub default_left: &'a [bool],
    pub sum_hessian: &'a [f32],
}

impl ShapForest {
    /// The forest of `trees`, whose margins start at `base_margin`.
    pub fn new(trees: &[TreeArrays<'_>], base_margin: f32) -> ShapForest {
        let mut expected_margin = f64::from(base_margin);
        let mut max_depth = 0;
        let trees: Vec<ShapTree> = trees
            .iter()
            .map(|t| {
                let n = t.left_children.len();
                let nodes: Vec<ShapNode> = (0..n)
                    .map(|i| {
                        let leaf = t.left_children[i] == -1;
                        ShapNode {
                            feature: t.split_indices[i] as u32,
                            value: t.split_conditions[i],
                            left: if leaf {
                                LEAF
                            } else {
                                t.left_children[i] as u32
                            },
                            right: if leaf {
                                LEAF
                            } else {
                                t.right_children[i] as u32
                            },
                            default_left: t.default_left[i],
                            cover: f64::from(t.sum_hessian[i]),
                        }
                    })
                    .collect();
                // Children come after their parent: one backward pass gives
                // every node's cover-weighted mean of its leaves (xgboost's
                // FillNodeMeanValues), one forward pass the depth.
                let mut mean = vec![0.0f64; n];
                for i in (0..n).rev() {
                    let node = nodes[i];
                    mean[i] = if node.left == LEAF {
                        f64::from(node.value)
                    } else {
                        let (l, r) = (node.left as usize, node.right as usize);
                        (mean[l] * nodes[l].cover + mean[r] * nodes[r].cover) / node.cover
                    };
                }
                let mut depth = vec![0usize; n];
                for i in 0..n {
                    if nodes[i].left != LEAF {
                        depth[nodes[i].left as usize] = depth[i] + 1;
                        depth[nodes[i].right as usize] = depth[i] + 1;
                    }
                }
                let depth = depth.into_iter().max().unwrap_or(0);
                max_depth = max_depth.max(depth);
                expected_margin += mean.first().copied().unwrap_or(0.0);
                ShapTree { nodes, depth }
            })
            .collect();
        let maxd = max_depth + 2;
        ShapForest {
            trees,
            expected_margin,
            path_len: maxd * (maxd + 1) / 2 + maxd,
            factors: (0..=maxd).map(DepthFactors::new).collect(),
        }
    }

    /// Adds one row's contributions to `phi` (`n_features + 1` values, the
    /// last the bias), in margin space: they sum to the row's margin.
    pub fn contributions(&self, row: &[f32], phi: &mut [f64]) {
        let mut path = vec![PathElement::default(); self.path_len];
        if let Some(bias) = phi.last_mut() {
            *bias += self.expected_margin;
        }
        for tree in &self.trees {
            debug_assert!(tree.depth + 2 <= self.path_len);
            tree.shap(&self.factors, row, phi, &mut path, 0, 0, 0, 1.0, 1.0, -1);
        }
    }
}

/// One feature on the path from the root to the current node.
#[derive(Debug, Clone, Copy, Default)]
struct PathElement {
    /// The feature split on; -1 for the root's placeholder.
    feature: i64,
    /// The fraction of "absent" paths (by cover) that pass.
    zero_fraction: f64,
    /// 1 if the row itself passes, else 0.
    one_fraction: f64,
    /// The permutation weight of the subset sizes.
    weight: f64,
}

/// Grows the path by one feature (xgboost's `ExtendPath`). `one` is 1 when
/// the row follows the branch, else 0 (it is never anything else).
fn extend(
    path: &mut [PathElement],
    f: &DepthFactors,
    depth: usize,
    zero: f64,
    one: f64,
    feature: i64,
) {
    path[depth] = PathElement {
        feature,
        zero_fraction: zero,
        one_fraction: one,
        weight: if depth == 0 { 1.0 } else { 0.0 },
    };
    for i in (0..depth).rev() {
        let w = path[i].weight;
        if one != 0.0 {
            path[i + 1].weight += one * w * f.rise[i];
        }
        path[i].weight = zero * w * f.fall[i];
    }
}

/// Undoes [`extend`] for the feature at `index` (xgboost's `UnwindPath`).
fn unwind(path: &mut [PathElement], depth: usize, index: usize) {
    let one = path[index].one_fraction;
    let zero = path[index].zero_fraction;
    let d1 = (depth + 1) as f64;
    let mut next_one_portion = path[depth].weight;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let tmp = path[i].weight;
            path[i].weight = next_one_portion * d1 / ((i + 1) as f64 * one);
            next_one_portion = tmp - path[i].weight * zero * (depth - i) as f64 / d1;
        } else {
            path[i].weight = path[i].weight * d1 / (zero * (depth - i) as f64);
        }
    }
    for i in index..depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
}

/// The total weight the path would have without the feature at `index`
/// (xgboost's `UnwoundPathSum`), for a feature the row follows
/// (`one_fraction` 1).
fn unwound_sum_followed(path: &[PathElement], f: &DepthFactors, depth: usize, index: usize) -> f64 {
    let one = path[index].one_fraction;
    let zero = path[index].zero_fraction;
    debug_assert!(one == 1.0);
    let mut next_one_portion = path[depth].weight;
    let mut total = 0.0;
    for i in (0..depth).rev() {
        let tmp = next_one_portion * f.inv_rise[i];
        total += tmp;
        next_one_portion = path[i].weight - tmp * zero * f.fall[i];
    }
    total
}

/// `UnwoundPathSum` for a feature the row does not follow (`one_fraction`
/// 0), given `cold_sum` ([`cold_sum`]): Σ `weight[i] / zero / fall[i]`,
/// where only `zero` depends on the feature.
fn unwound_sum_not_followed(cold_sum: f64, zero: f64) -> f64 {
    if zero != 0.0 { cold_sum / zero } else { 0.0 }
}

/// Σ over the path's first `depth` elements of `weight[i] / fall[i]`: the
/// part of every not-followed feature's unwound sum they share.
fn cold_sum(path: &[PathElement], f: &DepthFactors, depth: usize) -> f64 {
    (0..depth).map(|i| path[i].weight * f.inv_fall[i]).sum()
}

impl ShapTree {
    /// xgboost's `RegTree::TreeShap` with no conditioning: the path of the
    /// parent starts at `parent_start` in `buffer` and holds `depth + 1`
    /// elements; this node's copy follows it.
    #[allow(clippy::too_many_arguments)]
    fn shap(
        &self,
        factors: &[DepthFactors],
        row: &[f32],
        phi: &mut [f64],
        buffer: &mut [PathElement],
        node_index: usize,
        mut depth: usize,
        parent_start: usize,
        parent_zero: f64,
        parent_one: f64,
        parent_feature: i64,
    ) {
        let node = self.nodes[node_index];
        let start = parent_start + depth + 1;
        buffer.copy_within(parent_start..start, start);
        let path = &mut buffer[start..];
        extend(
            path,
            &factors[depth],
            depth,
            parent_zero,
            parent_one,
            parent_feature,
        );

        if node.left == LEAF {
            let f = &factors[depth];
            let mut shared = None;
            for i in 1..=depth {
                let el = path[i];
                let w = if el.one_fraction != 0.0 {
                    unwound_sum_followed(path, f, depth, i)
                } else {
                    let sum = *shared.get_or_insert_with(|| cold_sum(path, f, depth));
                    unwound_sum_not_followed(sum, el.zero_fraction)
                };
                phi[el.feature as usize] +=
                    w * (el.one_fraction - el.zero_fraction) * f64::from(node.value);
            }
            return;
        }
        let x = row[node.feature as usize];
        let go_left = if x.is_nan() {
            node.default_left
        } else {
            x < node.value
        };
        let (hot, cold) = if go_left {
            (node.left, node.right)
        } else {
            (node.right, node.left)
        };
        let (hot, cold) = (hot as usize, cold as usize);
        let hot_zero = self.nodes[hot].cover / node.cover;
        let cold_zero = self.nodes[cold].cover / node.cover;
        let (mut incoming_zero, mut incoming_one) = (1.0, 1.0);
        // A feature split on again higher up: undo that split, to redo it here.
        let feature = i64::from(node.feature);
        if let Some(index) = (0..=depth).find(|&i| path[i].feature == feature) {
            incoming_zero = path[index].zero_fraction;
            incoming_one = path[index].one_fraction;
            unwind(path, depth, index);
            depth -= 1;
        }
        self.shap(
            factors,
            row,
            phi,
            buffer,
            hot,
            depth + 1,
            start,
            hot_zero * incoming_zero,
            incoming_one,
            feature,
        );
        self.shap(
            factors,
            row,
            phi,
            buffer,
            cold,
            depth + 1,
            start,
            cold_zero * incoming_zero,
            0.0,
            feature,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stump on feature 0 (< 1 → -1 with cover 3, else 2 with cover 1),
    /// base margin 0: expected value (−3 + 2)/4 = −0.25; a row going right
    /// gets 2 − (−0.25) = 2.25 on feature 0, a missing one (default left)
    /// −1 + 0.25 = −0.75; feature 1 is never used.
    #[test]
    fn a_stump_attributes_its_split_to_its_feature() {
        let forest = ShapForest::new(
            &[TreeArrays {
                left_children: &[1, -1, -1],
                right_children: &[2, -1, -1],
                split_indices: &[0, 0, 0],
                split_conditions: &[1.0, -1.0, 2.0],
                default_left: &[true, false, false],
                sum_hessian: &[4.0, 3.0, 1.0],
            }],
            0.0,
        );
        let explain = |row: &[f32]| {
            let mut phi = vec![0.0; 3];
            forest.contributions(row, &mut phi);
            phi
        };
        assert_eq!(explain(&[5.0, 0.0]), [2.25, 0.0, -0.25]);
        assert_eq!(explain(&[0.0, 0.0]), [-0.75, 0.0, -0.25]);
        assert_eq!(explain(&[f32::NAN, 0.0]), [-0.75, 0.0, -0.25]);
    }
}
