//! One invocation of the sample TA (counter-v1: perso read, store get and put, output),
//! against validation of the same module (the install-time cost).

use teep_agent::sim::{MemoryTaStore, Perso, Runtime};

const MODULE: &[u8] = include_bytes!("../tas/counter-v1.wasm");
const PERSO: [Perso<'static>; 1] = [Perso {
    name: b"greeting",
    data: b"Hello from perso",
}];

fn main() {
    divan::main();
}

#[divan::bench]
fn invoke_sample(bencher: divan::Bencher<'_, '_>) {
    let runtime = Runtime::default();
    let ta = runtime.validate(MODULE).unwrap();
    let mut store = MemoryTaStore::new();
    bencher.bench_local(|| {
        ta.invoke(&mut store, b"ta", divan::black_box(&PERSO), b"hello")
            .unwrap()
    });
}

#[divan::bench]
fn validate_sample(bencher: divan::Bencher<'_, '_>) {
    let runtime = Runtime::default();
    bencher.bench_local(|| runtime.validate(divan::black_box(MODULE)).unwrap());
}
