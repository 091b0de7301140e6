//! Evaluator throughput on the committed model: rows scored per second, and
//! the cost of explaining one row (exact TreeSHAP, done for POSITIVE rows
//! only).
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fleetwatch::inference::features::FEATURE_NAMES;
use fleetwatch::inference::xgboost::XgbModel;

fn bench(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("model-artifacts");
    let model = XgbModel::load(
        &dir.join("fleetwatch.json"),
        &dir.join("fleetwatch.meta.json"),
        FEATURE_NAMES,
    )
    .expect("committed model loads");
    // Realistic rows: the parity sample (incl. missing values), repeated.
    let parity: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("fleetwatch.parity.json")).expect("parity file"),
    )
    .expect("parity json");
    let sample: Vec<f32> = parity["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .flat_map(|r| {
            r.as_array()
                .expect("row")
                .iter()
                .map(|x| x.as_f64().map_or(f32::NAN, |x| x as f32))
        })
        .collect();
    let n_rows = 10_000;
    let rows: Vec<f32> = sample
        .iter()
        .copied()
        .cycle()
        .take(n_rows * FEATURE_NAMES.len())
        .collect();
    let mut out = Vec::with_capacity(n_rows);
    let mut g = c.benchmark_group("evaluator");
    g.throughput(Throughput::Elements(n_rows as u64));
    g.bench_function("predict_batch_10k_rows", |b| {
        b.iter(|| {
            model
                .predict_batch(&rows, FEATURE_NAMES.len(), &mut out)
                .expect("scores");
            std::hint::black_box(&out);
        })
    });
    // One explained row (ns per row = the reported time): the parity rows
    // in turn, as the worker explains each POSITIVE row alone.
    let mut next = 0;
    g.throughput(Throughput::Elements(1));
    g.bench_function("contributions_1_row", |b| {
        b.iter(|| {
            let row = &sample[next * FEATURE_NAMES.len()..(next + 1) * FEATURE_NAMES.len()];
            next = (next + 1) % (sample.len() / FEATURE_NAMES.len());
            std::hint::black_box(model.contributions(row).expect("contributions"));
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
