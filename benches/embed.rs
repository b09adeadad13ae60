//! Word-embedding kernels: the word2vec (SGNS) step, the GloVe step and cosine similarity
//! against a vocabulary, keel on every instruction set the CPU has (`keel_avx512`,
//! `keel_avx2`, `keel_portable`, forced with `keel::kernels::isa::with_isa`) beside the
//! scalar reference. Throughput in FLOP/s, a multiply-add counted as 2. The steps run with a
//! learning rate of 0, which does all the work but leaves the vectors as they are, so every
//! iteration and every contender sees the same numbers (a real rate would drift them towards
//! saturation and subnormal steps, differently for each contender in turn).
//!
//! - `sgns_step`: one (center, context, 5 negatives) group, dim 64, 100 and 300, rows drawn
//!   from a 10 000-word output matrix (3 vector passes of `dim` per target: dot, two axpys);
//! - `glove_step`: one co-occurrence entry, dim 50, 100 and 300 (dot, then the AdaGrad pass,
//!   whose square root and division per component keep it on the divider);
//! - `cosine_similarity`: one query against 10 000 and 100 000 rows of 100, on 1 and 2
//!   threads (the rows split over the pool above 65 536 values).
//!
//! `cargo bench --bench embed`

mod common;

use std::hint::black_box;

use common::isa_runs;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use keel::kernels::embed::{cosine_similarity, glove_step, reference, sgns_step, GloveConfig};
use keel::kernels::isa::{with_isa, Isa};

fn filled(len: usize, seed: u32) -> Vec<f32> {
    // A cheap deterministic fill with both signs (benches must not run on zeros).
    (0..len)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / (1 << 24) as f32 - 0.5
        })
        .collect()
}

const VOCAB: usize = 10_000;

fn bench_sgns(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("sgns_step");
    for dim in [64usize, 100, 300] {
        let targets: Vec<u32> = (0..6u32).map(|k| k.wrapping_mul(1_640_531_527) % VOCAB as u32).collect();
        group.throughput(Throughput::Elements((6 * dim * 2 * 3) as u64));
        let (mut center, mut out, mut work) = (filled(dim, 1), filled(VOCAB * dim, 2), vec![0.0; dim]);
        for isa in Isa::available() {
            group.bench_function(BenchmarkId::new(format!("keel_{}", isa.name()), dim), |b| {
                with_isa(isa, || {
                    b.iter(|| sgns_step(&mut center, &mut out, &targets, 0.0, &mut work).unwrap())
                })
                .unwrap()
            });
        }
        group.bench_function(BenchmarkId::new("reference", dim), |b| {
            b.iter(|| reference::sgns_step(&mut center, &mut out, &targets, 0.0, &mut work))
        });
    }
    group.finish();
}

fn bench_glove(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("glove_step");
    let cfg = GloveConfig { lr: 0.0, ..GloveConfig::default() };
    for dim in [50usize, 100, 300] {
        group.throughput(Throughput::Elements((dim * 2 * 4) as u64));
        let (mut w, mut c) = (filled(dim + 1, 3), filled(dim + 1, 4));
        let (mut gw, mut gc) = (vec![1.0; dim + 1], vec![1.0; dim + 1]);
        for isa in Isa::available() {
            group.bench_function(BenchmarkId::new(format!("keel_{}", isa.name()), dim), |b| {
                with_isa(isa, || b.iter(|| glove_step(&cfg, 7.5, &mut w, &mut c, &mut gw, &mut gc).unwrap()))
                    .unwrap()
            });
        }
        group.bench_function(BenchmarkId::new("reference", dim), |b| {
            b.iter(|| reference::glove_step(&cfg, 7.5, &mut w, &mut c, &mut gw, &mut gc))
        });
    }
    group.finish();
}

fn bench_cosine(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("cosine_similarity");
    let dim = 100;
    for rows in [10_000usize, 100_000] {
        group.throughput(Throughput::Elements((rows * dim * 2 * 2) as u64));
        let (query, matrix, mut out) = (filled(dim, 5), filled(rows * dim, 6), vec![0.0; rows]);
        for run in isa_runs() {
            let (isa, pool) = (run.isa, &run.pool);
            group.bench_function(run.id(&format!("_{rows}")), |b| {
                pool.install(|| {
                    with_isa(isa, || {
                        b.iter(|| cosine_similarity(&query, &matrix, black_box(&mut out)).unwrap())
                    })
                })
                .unwrap()
            });
        }
        group.bench_function(BenchmarkId::new("reference", rows), |b| {
            b.iter(|| reference::cosine_similarity(&query, &matrix, black_box(&mut out)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_sgns, bench_glove, bench_cosine);
criterion_main!(benches);
