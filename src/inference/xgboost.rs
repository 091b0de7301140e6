//! In-process evaluator for XGBoost's JSON model format (`Booster.save_model
//! ("x.json")`, the artifact the SageMaker XGBoost container serves).
//!
//! Loading parses `learner.gradient_booster.model.trees[*]` and flattens all
//! trees into one array of 16-byte nodes (cache-friendly, no pointers).
//! Scoring follows XGBoost's CPU predictor exactly:
//! - from each tree's root, a split node goes left if `x < split_condition`,
//!   right otherwise; a missing value (`NaN`) follows `default_left`;
//! - a leaf's value is its `split_conditions` entry: XGBoost stores the leaf
//!   value (already scaled by the learning rate) in the same slot as the
//!   split condition, while `base_weights` holds the unscaled node weight
//!   and is *not* the prediction (the parity test pins this down);
//! - the margin starts from the base score in margin space (`logit(base_score)`
//!   for logistic objectives) and adds the leaves tree by tree in `f32`, as
//!   XGBoost does; the probability is `1 / (1 + exp(-margin))`.
//!
//! A model is only accepted together with its metadata file
//! (`model-artifacts/<name>.meta.json`) and the feature names the worker computes: a
//! mismatch in feature count, names, objective or base score is refused at
//! load with a typed error, never discovered as silent nonsense at run time.
//! Only numerical splits of a single-output `gbtree` are supported.
//!
//! With the nodes' training cover (`sum_hessian`, in every file xgboost
//! writes), the model also explains a row: exact TreeSHAP contributions,
//! as xgboost's `pred_contribs` ([`super::treeshap`]).

use std::path::Path;

use serde::Deserialize;

use super::treeshap::{ShapForest, TreeArrays};

#[derive(Debug, thiserror::Error)]
pub enum XgbError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid XGBoost model: {0}")]
    Invalid(String),
    #[error("unsupported XGBoost objective {0:?} (supported: binary:logistic, reg:logistic)")]
    UnsupportedObjective(String),
    #[error("model does not match its metadata: {0}")]
    MetaMismatch(String),
    #[error("feature rows have {got} columns but the model expects {expected}")]
    FeatureCount { expected: usize, got: usize },
}

/// The model's metadata file, written by `model-training/train.py`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelMeta {
    pub model_id: String,
    pub version: String,
    pub objective: String,
    pub feature_names: Vec<String>,
    pub n_features: usize,
    /// Probability at or above which a reading is `POSITIVE`.
    pub threshold: f64,
    #[serde(default)]
    pub base_score: Option<f64>,
}

// ---- serde view of the parts of the JSON format we use ----

#[derive(Deserialize)]
struct JsonModel {
    learner: JsonLearner,
}

#[derive(Deserialize)]
struct JsonLearner {
    gradient_booster: JsonBooster,
    learner_model_param: JsonLearnerParam,
    objective: JsonObjective,
}

#[derive(Deserialize)]
struct JsonBooster {
    name: String,
    #[serde(default)]
    model: Option<JsonGbtree>,
}

#[derive(Deserialize)]
struct JsonGbtree {
    trees: Vec<JsonTree>,
}

#[derive(Deserialize)]
struct JsonTree {
    left_children: Vec<i64>,
    right_children: Vec<i64>,
    split_indices: Vec<i64>,
    split_conditions: Vec<f32>,
    default_left: Vec<IntOrBool>,
    #[serde(default)]
    split_type: Vec<i64>,
    /// The training cover of each node, for TreeSHAP.
    #[serde(default)]
    sum_hessian: Vec<f32>,
}

/// `default_left` is `0/1` in current files; accept booleans too.
#[derive(Deserialize)]
#[serde(untagged)]
enum IntOrBool {
    Int(i64),
    Bool(bool),
}

impl IntOrBool {
    fn is_true(&self) -> bool {
        match self {
            IntOrBool::Int(i) => *i != 0,
            IntOrBool::Bool(b) => *b,
        }
    }
}

#[derive(Deserialize)]
struct JsonLearnerParam {
    base_score: String,
    num_feature: String,
    #[serde(default)]
    num_class: Option<String>,
    #[serde(default)]
    num_target: Option<String>,
}

#[derive(Deserialize)]
struct JsonObjective {
    name: String,
}

// ---- compact representation ----

/// High bit of `Node::feature`: missing values go left.
const DEFAULT_LEFT: u32 = 1 << 31;

/// 16 bytes. For a split, `value` is the split condition; for a leaf,
/// `value` is the leaf value and both children are the leaf itself.
#[derive(Debug, Clone, Copy)]
struct Node {
    feature: u32,
    value: f32,
    left: u32,
    right: u32,
}

/// A loaded, validated model.
#[derive(Debug, Clone)]
pub struct XgbModel {
    nodes: Vec<Node>,
    roots: Vec<u32>,
    /// Depth of each tree (steps from root to its deepest leaf).
    depths: Vec<u32>,
    n_features: usize,
    base_margin: f32,
    meta: ModelMeta,
    /// The trees with their covers, for explanations; `None` when the file
    /// has no `sum_hessian`.
    shap: Option<ShapForest>,
}

/// Parses XGBoost's `base_score`: `"5E-1"`, or `"[5E-1]"` (a vector since
/// XGBoost 2/3); a single value is required.
fn parse_base_score(s: &str) -> Result<f32, XgbError> {
    let t = s.trim();
    let t = t
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(t)
        .trim();
    if t.contains(',') {
        return Err(XgbError::Invalid(format!(
            "multi-output base_score {s:?} is not supported"
        )));
    }
    t.parse::<f32>()
        .map_err(|_| XgbError::Invalid(format!("base_score {s:?} is not a number")))
}

fn read(path: &Path) -> Result<Vec<u8>, XgbError> {
    std::fs::read(path).map_err(|source| XgbError::Io {
        path: path.display().to_string(),
        source,
    })
}

impl XgbModel {
    /// Loads `model_path` and `meta_path` and checks them against each other
    /// and against the features the caller computes.
    pub fn load(
        model_path: &Path,
        meta_path: &Path,
        expected_features: &[&str],
    ) -> Result<XgbModel, XgbError> {
        let meta: ModelMeta =
            serde_json::from_slice(&read(meta_path)?).map_err(|source| XgbError::Json {
                path: meta_path.display().to_string(),
                source,
            })?;
        let model: JsonModel =
            serde_json::from_slice(&read(model_path)?).map_err(|source| XgbError::Json {
                path: model_path.display().to_string(),
                source,
            })?;
        XgbModel::from_parts(model, meta, expected_features)
    }

    /// The metadata file that goes with a model file: `x/name.json` →
    /// `x/name.meta.json` (so `FLEETWATCH_MODEL` needs only the model path).
    pub fn meta_path_for(model_path: &Path) -> std::path::PathBuf {
        let stem = model_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        model_path.with_file_name(format!("{stem}.meta.json"))
    }

    /// As [`XgbModel::load`], from in-memory JSON.
    pub fn from_json(
        model_json: &[u8],
        meta_json: &[u8],
        expected_features: &[&str],
    ) -> Result<XgbModel, XgbError> {
        let meta: ModelMeta =
            serde_json::from_slice(meta_json).map_err(|source| XgbError::Json {
                path: "model metadata".into(),
                source,
            })?;
        let model: JsonModel =
            serde_json::from_slice(model_json).map_err(|source| XgbError::Json {
                path: "model".into(),
                source,
            })?;
        XgbModel::from_parts(model, meta, expected_features)
    }

    fn from_parts(
        model: JsonModel,
        meta: ModelMeta,
        expected: &[&str],
    ) -> Result<XgbModel, XgbError> {
        let l = model.learner;
        let objective = l.objective.name;
        if objective != "binary:logistic" && objective != "reg:logistic" {
            return Err(XgbError::UnsupportedObjective(objective));
        }
        if meta.objective != objective {
            return Err(XgbError::MetaMismatch(format!(
                "model objective is {objective:?}, metadata says {:?}",
                meta.objective
            )));
        }
        let p = l.learner_model_param;
        for (name, v) in [("num_class", &p.num_class), ("num_target", &p.num_target)] {
            if let Some(v) = v
                && v.parse::<u32>().map_or(true, |n| n > 1)
            {
                return Err(XgbError::Invalid(format!(
                    "{name} = {v:?}: only single-output models are supported"
                )));
            }
        }
        let n_features: usize = p.num_feature.parse().map_err(|_| {
            XgbError::Invalid(format!("num_feature {:?} is not a number", p.num_feature))
        })?;
        if meta.n_features != n_features || meta.feature_names.len() != n_features {
            return Err(XgbError::MetaMismatch(format!(
                "model has {n_features} features, metadata says {} ({} names)",
                meta.n_features,
                meta.feature_names.len()
            )));
        }
        if meta
            .feature_names
            .iter()
            .map(String::as_str)
            .ne(expected.iter().copied())
        {
            return Err(XgbError::MetaMismatch(format!(
                "model was trained on features {:?}, the worker computes {:?}",
                meta.feature_names, expected
            )));
        }
        let base_score = parse_base_score(&p.base_score)?;
        if !(base_score > 0.0 && base_score < 1.0) {
            return Err(XgbError::Invalid(format!(
                "base_score {base_score} is not a probability"
            )));
        }
        if let Some(b) = meta.base_score
            && (b - f64::from(base_score)).abs() > 1e-6
        {
            return Err(XgbError::MetaMismatch(format!(
                "base_score is {base_score}, metadata says {b}"
            )));
        }
        // XGBoost's ProbToMargin for logistic objectives, in f32 as it does.
        let base_margin = -(1.0f32 / base_score - 1.0).ln();

        if l.gradient_booster.name != "gbtree" {
            return Err(XgbError::Invalid(format!(
                "booster {:?} is not supported (only gbtree)",
                l.gradient_booster.name
            )));
        }
        let trees = l
            .gradient_booster
            .model
            .map(|m| m.trees)
            .unwrap_or_default();
        let mut nodes = Vec::new();
        let mut roots = Vec::with_capacity(trees.len());
        let mut depths = Vec::with_capacity(trees.len());
        for (ti, t) in trees.iter().enumerate() {
            let bad = |m: String| XgbError::Invalid(format!("tree {ti}: {m}"));
            let n = t.left_children.len();
            if n == 0
                || t.right_children.len() != n
                || t.split_indices.len() != n
                || t.split_conditions.len() != n
                || t.default_left.len() != n
            {
                return Err(bad("node arrays are empty or of different lengths".into()));
            }
            if t.split_type.iter().any(|&s| s != 0) {
                return Err(bad("categorical splits are not supported".into()));
            }
            let base = nodes.len();
            let offset =
                |c: i64| u32::try_from(base as i64 + c).map_err(|_| bad("too many nodes".into()));
            roots.push(offset(0)?);
            for i in 0..n {
                let (l, r) = (t.left_children[i], t.right_children[i]);
                if l == -1 {
                    // A leaf points at itself, so a fixed number of
                    // branch-free steps (the tree's depth) ends on it.
                    let me = offset(i as i64)?;
                    nodes.push(Node {
                        feature: 0,
                        value: t.split_conditions[i],
                        left: me,
                        right: me,
                    });
                    continue;
                }
                // Children always come after their parent in XGBoost's
                // layout; requiring it guarantees every walk terminates.
                let in_range = |c: i64| c > i as i64 && (c as usize) < n;
                if !in_range(l) || !in_range(r) {
                    return Err(bad(format!(
                        "node {i} has children {l}/{r} out of order or range"
                    )));
                }
                let f = t.split_indices[i];
                if f < 0 || f as usize >= n_features {
                    return Err(bad(format!(
                        "node {i} splits on feature {f} of {n_features}"
                    )));
                }
                let dl = if t.default_left[i].is_true() {
                    DEFAULT_LEFT
                } else {
                    0
                };
                nodes.push(Node {
                    feature: f as u32 | dl,
                    value: t.split_conditions[i],
                    left: offset(l)?,
                    right: offset(r)?,
                });
            }
            // Depth: children come after parents, so one forward pass.
            let mut depth = vec![0u32; n];
            for i in 0..n {
                if t.left_children[i] != -1 {
                    for c in [t.left_children[i], t.right_children[i]] {
                        depth[c as usize] = depth[i] + 1;
                    }
                }
            }
            depths.push(depth.into_iter().max().unwrap_or(0));
        }
        let default_left: Vec<Vec<bool>> = trees
            .iter()
            .map(|t| t.default_left.iter().map(IntOrBool::is_true).collect())
            .collect();
        let shap = trees
            .iter()
            .all(|t| t.sum_hessian.len() == t.left_children.len())
            .then(|| {
                let arrays: Vec<TreeArrays<'_>> = trees
                    .iter()
                    .zip(&default_left)
                    .map(|(t, dl)| TreeArrays {
                        left_children: &t.left_children,
                        right_children: &t.right_children,
                        split_indices: &t.split_indices,
                        split_conditions: &t.split_conditions,
                        default_left: dl,
                        sum_hessian: &t.sum_hessian,
                    })
                    .collect();
                ShapForest::new(&arrays, base_margin)
            });
        Ok(XgbModel {
            nodes,
            roots,
            depths,
            n_features,
            base_margin,
            meta,
            shap,
        })
    }

    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    pub fn n_trees(&self) -> usize {
        self.roots.len()
    }

    /// Rows scored together: walking several independent rows through the
    /// same tree in lock-step lets the CPU overlap their memory loads.
    const BLOCK: usize = 8;

    /// Margins (log-odds) of up to `BLOCK` rows. Each row still sums its
    /// leaves in tree order in `f32`, exactly as XGBoost does.
    #[inline]
    fn margins_block(&self, rows: &[f32], out: &mut [f32]) {
        let nf = self.n_features;
        let k = out.len();
        // What makes the unchecked reads below sound: every row index is
        // below `k * nf`, which this checks once per block; every node
        // index is a root or a child, and every split feature below
        // `n_features`, which `from_parts` checked at load.
        assert!(k <= Self::BLOCK && nf > 0 && rows.len() >= k * nf);
        let mut sums = [self.base_margin; Self::BLOCK];
        let mut idx = [0u32; Self::BLOCK];
        for (&root, &depth) in self.roots.iter().zip(&self.depths) {
            idx[..k].fill(root);
            for _ in 0..depth {
                for (r, at) in idx[..k].iter_mut().enumerate() {
                    // SAFETY: node indices and features as checked at load (above).
                    let n = unsafe { *self.nodes.get_unchecked(*at as usize) };
                    let column = (n.feature & !DEFAULT_LEFT) as usize;
                    // SAFETY: r < k and column < nf, so below `k * nf <= rows.len()`.
                    let x = unsafe { *rows.get_unchecked(r * nf + column) };
                    let go_left = if x.is_nan() {
                        n.feature & DEFAULT_LEFT != 0
                    } else {
                        x < n.value
                    };
                    *at = if go_left { n.left } else { n.right };
                }
            }
            for r in 0..k {
                sums[r] += self.nodes[idx[r] as usize].value;
            }
        }
        out.copy_from_slice(&sums[..k]);
    }

    fn check(&self, rows: &[f32], n_features: usize) -> Result<usize, XgbError> {
        if n_features != self.n_features
            || n_features == 0
            || !rows.len().is_multiple_of(n_features)
        {
            return Err(XgbError::FeatureCount {
                expected: self.n_features,
                got: n_features,
            });
        }
        Ok(rows.len() / n_features)
    }

    fn margins_into(&self, rows: &[f32], n_rows: usize, out: &mut Vec<f32>) {
        out.clear();
        out.resize(n_rows, 0.0);
        let step = Self::BLOCK * self.n_features;
        for (block, o) in rows.chunks(step).zip(out.chunks_mut(Self::BLOCK)) {
            self.margins_block(block, o);
        }
    }

    /// Scores row-major `rows` (`n_features` values each, `NaN` = missing)
    /// into `out` (cleared first): one probability per row. Allocates only
    /// if `out` has too little capacity.
    pub fn predict_batch(
        &self,
        rows: &[f32],
        n_features: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), XgbError> {
        let n_rows = self.check(rows, n_features)?;
        self.margins_into(rows, n_rows, out);
        for m in out.iter_mut() {
            *m = 1.0 / (1.0 + (-*m).exp());
        }
        Ok(())
    }

    /// Whether the model can explain rows (its file has the covers).
    pub fn explains(&self) -> bool {
        self.shap.is_some()
    }

    /// One row's exact TreeSHAP contributions in margin space (log-odds):
    /// one per feature, then the bias; they sum to the row's margin.
    pub fn contributions(&self, row: &[f32]) -> Result<Vec<f64>, XgbError> {
        self.check(row, row.len())?;
        let shap = self.shap.as_ref().ok_or_else(|| {
            XgbError::Invalid("the model file has no sum_hessian: it cannot explain".into())
        })?;
        let mut phi = vec![0.0; self.n_features + 1];
        shap.contributions(row, &mut phi);
        Ok(phi)
    }

    /// Margins instead of probabilities (for tests and diagnostics).
    pub fn margin_batch(
        &self,
        rows: &[f32],
        n_features: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), XgbError> {
        let n_rows = self.check(rows, n_features)?;
        self.margins_into(rows, n_rows, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::features::FEATURE_NAMES;

    const MODEL: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/model-artifacts/fleetwatch.json"
    );
    const META: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/model-artifacts/fleetwatch.meta.json"
    );

    fn committed() -> XgbModel {
        XgbModel::load(Path::new(MODEL), Path::new(META), FEATURE_NAMES).unwrap()
    }

    #[test]
    fn committed_model_reproduces_xgboost() {
        let m = committed();
        let p = crate::inference::parity::fixture();
        let rows = crate::inference::parity::rows(&p["rows"]);
        assert!(
            rows.iter().any(|x| x.is_nan()),
            "parity rows must include missing values"
        );
        let mut probs = Vec::new();
        m.predict_batch(&rows, FEATURE_NAMES.len(), &mut probs)
            .unwrap();
        let want: Vec<f64> = p["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(probs.len(), want.len());
        assert!(want.len() >= 150);
        for (i, (got, want)) in probs.iter().zip(&want).enumerate() {
            assert!(
                (f64::from(*got) - want).abs() <= 1e-6,
                "row {i}: {got} vs {want}"
            );
        }
        let mut margins = Vec::new();
        m.margin_batch(&rows, FEATURE_NAMES.len(), &mut margins)
            .unwrap();
        for (got, want) in margins.iter().zip(p["margins"].as_array().unwrap()) {
            assert!((f64::from(*got) - want.as_f64().unwrap()).abs() <= 1e-5);
        }
    }

    /// The explanations are xgboost's own: on every parity row (missing
    /// values included) each TreeSHAP contribution and the bias match
    /// `pred_contribs` of the pinned xgboost within 1e-5, and they sum to
    /// the margin.
    #[test]
    fn committed_model_contributions_match_xgboost_pred_contribs() {
        let m = committed();
        assert!(m.explains());
        let p = crate::inference::parity::fixture();
        let rows = crate::inference::parity::rows(&p["rows"]);
        let want = p["contributions"].as_array().unwrap();
        assert_eq!(want.len(), rows.len() / FEATURE_NAMES.len());
        let mut margins = Vec::new();
        m.margin_batch(&rows, FEATURE_NAMES.len(), &mut margins)
            .unwrap();
        for (i, (row, want)) in rows.chunks(FEATURE_NAMES.len()).zip(want).enumerate() {
            let got = m.contributions(row).unwrap();
            let want = want.as_array().unwrap();
            assert_eq!(got.len(), want.len());
            for (j, (g, w)) in got.iter().zip(want).enumerate() {
                let w = w.as_f64().unwrap();
                assert!((g - w).abs() <= 1e-5, "row {i} feature {j}: {g} vs {w}");
            }
            let sum: f64 = got.iter().sum();
            assert!((sum - f64::from(margins[i])).abs() <= 1e-4, "row {i}");
        }
        assert!(matches!(
            m.contributions(&rows[..3]),
            Err(XgbError::FeatureCount { .. })
        ));
    }

    #[test]
    fn meta_path_sits_beside_the_model() {
        assert_eq!(
            XgbModel::meta_path_for(Path::new("model-artifacts/fleetwatch.json")),
            Path::new("model-artifacts/fleetwatch.meta.json")
        );
        assert_eq!(XgbModel::meta_path_for(Path::new(MODEL)), Path::new(META));
    }

    #[test]
    fn base_score_forms() {
        assert_eq!(parse_base_score("5E-1").unwrap(), 0.5);
        assert_eq!(parse_base_score("[5E-1]").unwrap(), 0.5);
        assert_eq!(parse_base_score(" [2.5E-1] ").unwrap(), 0.25);
        assert!(parse_base_score("[1E-1,2E-1]").is_err());
        assert!(parse_base_score("abc").is_err());
    }

    /// A hand-made model: one stump on feature 1 (< 0.5 → -1, else 2;
    /// missing → right), one leaf-only tree (+0.5), base_score 0.5.
    fn tiny(objective: &str, base_score: &str, n_features: usize) -> Vec<u8> {
        serde_json::json!({"learner": {
            "learner_model_param": {"base_score": base_score, "num_feature": n_features.to_string(), "num_class": "0"},
            "objective": {"name": objective},
            "gradient_booster": {"name": "gbtree", "model": {"trees": [
                {"left_children": [1, -1, -1], "right_children": [2, -1, -1], "split_indices": [1, 0, 0],
                 "split_conditions": [0.5, -1.0, 2.0], "default_left": [0, 0, 0], "base_weights": [0.0, -10.0, 20.0]},
                {"left_children": [-1], "right_children": [-1], "split_indices": [0],
                 "split_conditions": [0.5], "default_left": [0], "base_weights": [5.0]}
            ]}}}})
        .to_string()
        .into_bytes()
    }

    fn tiny_meta(n: usize, objective: &str) -> Vec<u8> {
        serde_json::json!({"model_id": "t", "version": "1", "objective": objective,
            "feature_names": (0..n).map(|i| format!("f{i}")).collect::<Vec<_>>(), "n_features": n, "threshold": 0.5})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn tiny_model_semantics() {
        let names = ["f0", "f1"];
        let m = XgbModel::from_json(
            &tiny("binary:logistic", "[5E-1]", 2),
            &tiny_meta(2, "binary:logistic"),
            &names,
        )
        .unwrap();
        let mut out = Vec::new();
        m.margin_batch(&[0.0, 0.4, 0.0, 0.5, 0.0, f32::NAN], 2, &mut out)
            .unwrap();
        // Leaves use split_conditions (not base_weights); x == cond goes right.
        assert_eq!(out, vec![-0.5, 2.5, 2.5]);
        m.predict_batch(&[0.0, 0.4], 2, &mut out).unwrap();
        assert!((out[0] - 1.0 / (1.0 + 0.5f32.exp())).abs() < 1e-7);
        assert!(matches!(
            m.predict_batch(&[0.0; 3], 3, &mut out),
            Err(XgbError::FeatureCount { .. })
        ));
        assert!(matches!(
            m.predict_batch(&[0.0; 3], 2, &mut out),
            Err(XgbError::FeatureCount { .. })
        ));
    }

    #[test]
    fn mismatches_are_refused() {
        let names = ["f0", "f1"];
        let err = |model: Vec<u8>, meta: Vec<u8>, names: &[&str]| {
            XgbModel::from_json(&model, &meta, names).unwrap_err()
        };
        assert!(matches!(
            err(
                tiny("reg:squarederror", "5E-1", 2),
                tiny_meta(2, "reg:squarederror"),
                &names
            ),
            XgbError::UnsupportedObjective(_)
        ));
        assert!(matches!(
            err(
                tiny("binary:logistic", "5E-1", 2),
                tiny_meta(2, "reg:logistic"),
                &names
            ),
            XgbError::MetaMismatch(_)
        ));
        assert!(matches!(
            err(
                tiny("binary:logistic", "5E-1", 3),
                tiny_meta(2, "binary:logistic"),
                &names
            ),
            XgbError::MetaMismatch(_)
        ));
        assert!(matches!(
            err(
                tiny("binary:logistic", "5E-1", 2),
                tiny_meta(2, "binary:logistic"),
                &["f0", "x"]
            ),
            XgbError::MetaMismatch(_)
        ));
        // Split on a feature the model does not have.
        assert!(matches!(
            err(
                tiny("binary:logistic", "5E-1", 1),
                tiny_meta(1, "binary:logistic"),
                &["f0"]
            ),
            XgbError::Invalid(_)
        ));
        assert!(matches!(
            err(b"{".to_vec(), tiny_meta(2, "binary:logistic"), &names),
            XgbError::Json { .. }
        ));
        let e = XgbModel::load(
            Path::new("/nonexistent/m.json"),
            Path::new(META),
            FEATURE_NAMES,
        )
        .unwrap_err();
        assert!(matches!(e, XgbError::Io { .. }), "{e}");
    }

    #[test]
    fn committed_model_is_small_and_matches_worker_features() {
        let m = committed();
        assert_eq!(m.n_features(), FEATURE_NAMES.len());
        assert!(m.n_trees() <= 200);
        assert!(std::fs::metadata(MODEL).unwrap().len() < 5 * 1024 * 1024);
        assert!(m.meta().threshold > 0.0 && m.meta().threshold < 1.0);
    }
}
