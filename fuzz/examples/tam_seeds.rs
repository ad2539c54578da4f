//! Writes the seeds of `tam_exchange` into the directory given as the only argument: for
//! each stage of the fixture's first contact, the unsigned QueryResponse and Success the
//! harness signs, the Evidence claims for the stage's challenge, the SUIT reports of the
//! manifests its Update sent, and the empty body. Run by `make-seeds.sh`.

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: tam_seeds DIR"));
    std::fs::create_dir_all(&dir).expect("the seed directory");
    let fixture = teep_fuzz::tam::Fixture::new();
    for (name, bytes) in fixture.seeds() {
        std::fs::write(dir.join(format!("{name}.bin")), bytes).expect("writes a seed");
    }
}
