//! Throughput of the CPU-bound stages, readings per second: generating a
//! fleet (`fleetwatch simulate`, also the load generator), parsing each
//! format, and features + embedded model over parsed readings. The AWS
//! stages are I/O and are measured against real services, not here.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fleetwatch::inference::embedded::EmbeddedModel;
use fleetwatch::simulate::{self, SimConfig, SimFormat};
use fleetwatch::telemetry::{LineParser, Reading};

fn config(format: SimFormat) -> SimConfig {
    SimConfig {
        vehicles: 20,
        hours: 24.0,
        interval_secs: 30,
        seed: 42,
        format,
        gzip: false,
        ..SimConfig::default()
    }
}

fn files(format: SimFormat) -> Vec<String> {
    simulate::files(&config(format))
        .expect("valid config")
        .map(|f| String::from_utf8(f.bytes).expect("UTF-8"))
        .collect()
}

fn parse(text: &str) -> Vec<Reading> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(first) = lines.next() else {
        return Vec::new();
    };
    let (parser, header) = LineParser::detect(first);
    let first = (!header).then_some(first);
    first
        .into_iter()
        .chain(lines)
        .filter_map(|l| parser.parse(l).ok())
        .collect()
}

fn bench(c: &mut Criterion) {
    let readings: usize = simulate::files(&config(SimFormat::JsonLines))
        .expect("valid config")
        .map(|f| f.readings)
        .sum();

    let mut g = c.benchmark_group("simulate");
    g.throughput(Throughput::Elements(readings as u64));
    g.sample_size(10);
    for format in [SimFormat::JsonLines, SimFormat::Csv, SimFormat::Text] {
        g.bench_function(format.extension(), |b| {
            b.iter(|| {
                std::hint::black_box(
                    simulate::files(&config(format))
                        .expect("valid config")
                        .count(),
                )
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(readings as u64));
    g.sample_size(10);
    for format in [SimFormat::JsonLines, SimFormat::Csv, SimFormat::Text] {
        let texts = files(format);
        g.bench_function(format.extension(), |b| {
            b.iter(|| std::hint::black_box(texts.iter().map(|t| parse(t).len()).sum::<usize>()))
        });
    }
    g.finish();

    let model = EmbeddedModel::builtin().expect("the built-in model loads");
    let objects: Vec<Vec<Reading>> = files(SimFormat::JsonLines)
        .iter()
        .map(|t| parse(t))
        .collect();
    let mut g = c.benchmark_group("predict");
    g.throughput(Throughput::Elements(readings as u64));
    g.sample_size(10);
    g.bench_function("features_and_model_per_object", |b| {
        b.iter(|| {
            std::hint::black_box(
                objects
                    .iter()
                    .map(|o| model.predict(o).map_or(0, |p| p.len()))
                    .sum::<usize>(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
