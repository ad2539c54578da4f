//! The TA runtime against the sample TAs and hostile modules: limits, validation,
//! isolation, the ABI's bounds checks, and all-or-nothing store writes.

use teep_agent::sim::{
    Limits, MemoryTaStore, Perso, Runtime, RuntimeError, StoreError, TaStore, ValidatedTa, abi,
};

const TA_A: &[u8] = b"ta-a";
const TA_B: &[u8] = b"ta-b";
const GREETING: Perso<'static> = Perso {
    name: b"greeting",
    data: b"Hello from perso",
};

/// The default limits with one change.
fn limits(change: impl FnOnce(&mut Limits)) -> Limits {
    let mut limits = Limits::default();
    change(&mut limits);
    limits
}

fn tas_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tas")
}

fn wasm(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).unwrap()
}

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(tas_dir().join(format!("{name}.wasm"))).unwrap()
}

fn install(rt: &Runtime, wat: &str) -> ValidatedTa {
    rt.validate(&wasm(wat)).unwrap()
}

fn invoke_text(ta: &ValidatedTa, store: &mut MemoryTaStore, component: &[u8]) -> String {
    let out = ta.invoke(store, component, &[GREETING], b"hello").unwrap();
    String::from_utf8(out.output).unwrap()
}

fn count(store: &MemoryTaStore, component: &[u8]) -> Option<u32> {
    let bytes = store.get(component, b"count").unwrap()?;
    Some(u32::from_le_bytes(bytes.try_into().unwrap()))
}

// ---- the sample TA ----

/// The committed binaries are exactly what the WAT sources compile to, so the demo can
/// package them without a toolchain. `TEEP_WRITE_TAS=1` rewrites them.
#[test]
fn committed_wasm_is_built_from_wat() {
    for name in ["counter-v1", "counter-v2"] {
        let wat = std::fs::read_to_string(tas_dir().join(format!("{name}.wat"))).unwrap();
        let built = wasm(&wat);
        let path = tas_dir().join(format!("{name}.wasm"));
        if std::env::var_os("TEEP_WRITE_TAS").is_some() {
            std::fs::write(&path, &built).unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), built, "{name}.wasm is stale");
    }
}

#[test]
fn sample_v1_greets_from_perso_and_counts_across_invocations() {
    let rt = Runtime::default();
    let ta = rt.validate(&sample("counter-v1")).unwrap();
    let mut store = MemoryTaStore::new();
    for n in 1..=3 {
        assert_eq!(
            invoke_text(&ta, &mut store, TA_A),
            format!("Hello from perso, call #{n}")
        );
        assert_eq!(count(&store, TA_A), Some(n));
    }
    // Another greeting comes from other personalization data, not from the module.
    let other = Perso {
        name: b"greeting",
        data: b"Bonjour",
    };
    let out = ta.invoke(&mut store, TA_A, &[other], b"").unwrap();
    assert_eq!(out.output, b"Bonjour, call #4");
}

#[test]
fn sample_v2_differs_and_keeps_the_v1_counter() {
    let rt = Runtime::default();
    let v1 = rt.validate(&sample("counter-v1")).unwrap();
    let v2 = rt.validate(&sample("counter-v2")).unwrap();
    let mut store = MemoryTaStore::new();
    assert_eq!(
        invoke_text(&v1, &mut store, TA_A),
        "Hello from perso, call #1"
    );
    assert_eq!(
        invoke_text(&v2, &mut store, TA_A),
        "v2: HELLO FROM PERSO, call #3"
    );
    assert_eq!(
        invoke_text(&v2, &mut store, TA_A),
        "v2: HELLO FROM PERSO, call #5"
    );
    assert_eq!(count(&store, TA_A), Some(5));
}

#[test]
fn sample_without_its_perso_fails_and_writes_nothing() {
    let rt = Runtime::default();
    let ta = rt.validate(&sample("counter-v1")).unwrap();
    let mut store = MemoryTaStore::new();
    let other = Perso {
        name: b"other",
        data: b"x",
    };
    assert_eq!(
        ta.invoke(&mut store, TA_A, &[other], b""),
        Err(RuntimeError::TaFailed(1))
    );
    assert_eq!(store, MemoryTaStore::new());
}

#[test]
fn one_ta_cannot_read_anothers_store() {
    let rt = Runtime::default();
    let ta = rt.validate(&sample("counter-v1")).unwrap();
    let mut store = MemoryTaStore::new();
    invoke_text(&ta, &mut store, TA_A);
    invoke_text(&ta, &mut store, TA_A);
    // Same module, same key "count": B starts from nothing and leaves A's entry alone.
    assert_eq!(
        invoke_text(&ta, &mut store, TA_B),
        "Hello from perso, call #1"
    );
    assert_eq!(count(&store, TA_A), Some(2));
    assert_eq!(count(&store, TA_B), Some(1));
}

// ---- limits ----

/// Writes to its store, then loops forever.
const SPIN: &str = r#"(module
  (import "teep" "kv_put" (func $put (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "invoke") (result i32)
    (drop (call $put (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1)))
    (loop $l (br $l))
    (i32.const 0)))"#;

#[test]
fn infinite_loop_runs_out_of_fuel_and_changes_nothing() {
    let rt = Runtime::new(limits(|l| l.fuel = 100_000));
    let ta = install(&rt, SPIN);
    let mut store = MemoryTaStore::new();
    assert_eq!(
        ta.invoke(&mut store, TA_A, &[], b""),
        Err(RuntimeError::OutOfFuel)
    );
    assert_eq!(store, MemoryTaStore::new());
}

#[test]
fn growing_memory_past_the_limit_is_a_typed_error() {
    let rt = Runtime::new(limits(|l| l.memory_pages = 4));
    let grow = |pages: u32| {
        format!(
            r#"(module
              (import "teep" "kv_put" (func $put (param i32 i32 i32 i32) (result i32)))
              (memory (export "memory") 1)
              (func (export "invoke") (result i32)
                (drop (call $put (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1)))
                (drop (memory.grow (i32.const {pages})))
                (i32.const 0)))"#
        )
    };
    let mut store = MemoryTaStore::new();
    // Up to the limit is fine (1 + 3 = 4 pages)...
    install(&rt, &grow(3))
        .invoke(&mut store, TA_A, &[], b"")
        .unwrap();
    assert_eq!(store.get(TA_A, b"\0").unwrap(), Some(vec![0]));
    // ...one page more traps, and its write is not applied.
    let mut store = MemoryTaStore::new();
    assert_eq!(
        install(&rt, &grow(4)).invoke(&mut store, TA_A, &[], b""),
        Err(RuntimeError::MemoryLimit)
    );
    assert_eq!(store, MemoryTaStore::new());
}

#[test]
fn initial_memory_over_the_limit_fails_validation() {
    let rt = Runtime::new(limits(|l| l.memory_pages = 4));
    let module = wasm(
        r#"(module (memory (export "memory") 5)
           (func (export "invoke") (result i32) (i32.const 0)))"#,
    );
    assert_eq!(
        rt.validate(&module).unwrap_err(),
        RuntimeError::MemoryTooLarge { pages: 5, max: 4 }
    );
}

#[test]
fn deep_recursion_is_a_stack_overflow() {
    let rt = Runtime::default();
    let ta = install(
        &rt,
        r#"(module (memory (export "memory") 1)
          (func $f (result i32) (call $f))
          (func (export "invoke") (result i32) (call $f)))"#,
    );
    assert_eq!(
        ta.invoke(&mut MemoryTaStore::new(), TA_A, &[], b""),
        Err(RuntimeError::StackOverflow)
    );
}

#[test]
fn input_over_the_limit_is_refused_before_running() {
    let rt = Runtime::default();
    let ta = rt.validate(&sample("counter-v1")).unwrap();
    let mut store = MemoryTaStore::new();
    let input = vec![0; rt.limits().max_input + 1];
    assert!(matches!(
        ta.invoke(&mut store, TA_A, &[GREETING], &input),
        Err(RuntimeError::InputTooLarge { .. })
    ));
    assert_eq!(store, MemoryTaStore::new());
}

// ---- validation ----

fn rejected(wat: &str) -> RuntimeError {
    Runtime::default().validate(&wasm(wat)).unwrap_err()
}

fn forbidden(module: &str, name: &str) -> RuntimeError {
    RuntimeError::ForbiddenImport {
        module: module.into(),
        name: name.into(),
    }
}

#[test]
fn imports_outside_the_abi_fail_validation() {
    let body =
        r#"(memory (export "memory") 1) (func (export "invoke") (result i32) (i32.const 0))"#;
    assert_eq!(
        rejected(&format!(
            r#"(module (import "wasi_snapshot_preview1" "fd_write"
                 (func (param i32 i32 i32 i32) (result i32))) {body})"#
        )),
        forbidden("wasi_snapshot_preview1", "fd_write")
    );
    assert_eq!(
        rejected(&format!(
            r#"(module (import "teep" "unknown" (func (result i32))) {body})"#
        )),
        forbidden("teep", "unknown")
    );
    // An ABI name and signature, but from another module.
    assert_eq!(
        rejected(&format!(
            r#"(module (import "env" "kv_get" (func (param i32 i32 i32 i32) (result i32))) {body})"#
        )),
        forbidden("env", "kv_get")
    );
    // An ABI name imported as something other than a function.
    assert_eq!(
        rejected(&format!(
            r#"(module (import "teep" "input_len" (global i32)) {body})"#
        )),
        forbidden("teep", "input_len")
    );
    // A host-provided memory (the TA must own its memory).
    assert_eq!(
        rejected(
            r#"(module (import "teep" "memory" (memory 1)) (export "memory" (memory 0))
               (func (export "invoke") (result i32) (i32.const 0)))"#
        ),
        forbidden("teep", "memory")
    );
}

#[test]
fn abi_function_with_the_wrong_signature_fails_validation() {
    let body =
        r#"(memory (export "memory") 1) (func (export "invoke") (result i32) (i32.const 0))"#;
    for import in [
        r#"(func (param i32 i32 i32) (result i32))"#,
        r#"(func (param i32 i32 i32 i32))"#,
        r#"(func (param i64 i32 i32 i32) (result i32))"#,
    ] {
        assert_eq!(
            rejected(&format!(
                r#"(module (import "teep" "kv_get" {import}) {body})"#
            )),
            RuntimeError::ImportSignature("kv_get".into()),
            "{import}"
        );
    }
}

#[test]
fn invalid_modules_fail_validation() {
    let rt = Runtime::default();
    for garbage in [
        &b""[..],
        b"\0asm",
        b"\0asm\x01\0\0\0\x01\xff",
        b"not wasm at all",
    ] {
        assert!(
            matches!(rt.validate(garbage), Err(RuntimeError::Invalid(_))),
            "{garbage:?}"
        );
    }
    // The text format is not a module: only binaries install.
    let text = br#"(module (memory (export "memory") 1) (func (export "invoke") (result i32) (i32.const 0)))"#;
    assert!(matches!(rt.validate(text), Err(RuntimeError::Invalid(_))));
    // Well-formed but fails validation (an i32 result from an empty body).
    assert!(matches!(
        rt.validate(&wasm(
            r#"(module (memory (export "memory") 1) (func (export "invoke") (result i32)))"#
        )),
        Err(RuntimeError::Invalid(_))
    ));
}

#[test]
fn missing_or_mistyped_exports_fail_validation() {
    assert_eq!(
        rejected(
            r#"(module (memory (export "memory") 1) (func (export "run") (result i32) (i32.const 0)))"#
        ),
        RuntimeError::MissingExport(abi::INVOKE)
    );
    assert_eq!(
        rejected(r#"(module (memory (export "memory") 1) (func (export "invoke")))"#),
        RuntimeError::ExportSignature(abi::INVOKE)
    );
    assert_eq!(
        rejected(
            r#"(module (memory (export "memory") 1) (func (export "invoke") (param i32) (result i32) (i32.const 0)))"#
        ),
        RuntimeError::ExportSignature(abi::INVOKE)
    );
    assert_eq!(
        rejected(
            r#"(module (memory (export "invoke") 1) (func (export "memory") (result i32) (i32.const 0)))"#
        ),
        RuntimeError::ExportSignature(abi::INVOKE)
    );
    assert_eq!(
        rejected(r#"(module (memory 1) (func (export "invoke") (result i32) (i32.const 0)))"#),
        RuntimeError::MissingExport(abi::MEMORY)
    );
    assert_eq!(
        rejected(
            r#"(module (memory 1) (global (export "memory") i32 (i32.const 0)) (func (export "invoke") (result i32) (i32.const 0)))"#
        ),
        RuntimeError::ExportSignature(abi::MEMORY)
    );
}

#[test]
fn start_function_and_bad_segments_fail_validation() {
    // A start function would run code at instantiation, outside any invocation.
    assert!(matches!(
        rejected(
            r#"(module (memory (export "memory") 1) (func $s) (start $s)
               (func (export "invoke") (result i32) (i32.const 0)))"#
        ),
        RuntimeError::Invalid(_)
    ));
    // A data segment past the end of memory fails at install, not at every invocation.
    assert!(matches!(
        rejected(
            r#"(module (memory (export "memory") 1) (data (i32.const 65535) "xy")
               (func (export "invoke") (result i32) (i32.const 0)))"#
        ),
        RuntimeError::Instantiation(_)
    ));
}

#[test]
fn oversized_module_fails_validation() {
    let rt = Runtime::default();
    let big = vec![0; rt.limits().max_module_bytes + 1];
    assert!(matches!(
        rt.validate(&big),
        Err(RuntimeError::ModuleTooLarge { .. })
    ));
}

// ---- the ABI under attack ----

/// Calls one ABI function with arguments taken from its input and outputs the result.
/// Input: `[fn, a, b, c, d]` as little-endian i32 (fn: 0 input_read, 1 output_write,
/// 2 kv_get, 3 kv_put, 4 perso_len, 5 perso_read, 6 input_len), then a payload at offset 20 that the
/// arguments may point into. Output: whatever the call wrote, then the 4-byte result.
const PROBE: &str = r#"(module
  (import "teep" "input_len" (func $input_len (result i32)))
  (import "teep" "input_read" (func $input_read (param i32 i32) (result i32)))
  (import "teep" "output_write" (func $output_write (param i32 i32) (result i32)))
  (import "teep" "kv_get" (func $kv_get (param i32 i32 i32 i32) (result i32)))
  (import "teep" "kv_put" (func $kv_put (param i32 i32 i32 i32) (result i32)))
  (import "teep" "perso_len" (func $perso_len (param i32 i32) (result i32)))
  (import "teep" "perso_read" (func $perso_read (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "invoke") (result i32)
    (local $a i32) (local $b i32) (local $c i32) (local $d i32) (local $r i32)
    (if (i32.gt_u (call $input_read (i32.const 0) (i32.const 8192)) (i32.const 8192))
      (then (return (i32.const 1))))
    (local.set $a (i32.load (i32.const 4)))
    (local.set $b (i32.load (i32.const 8)))
    (local.set $c (i32.load (i32.const 12)))
    (local.set $d (i32.load (i32.const 16)))
    (block $done
      (block $f6 (block $f5 (block $f4 (block $f3 (block $f2 (block $f1 (block $f0
        (br_table $f0 $f1 $f2 $f3 $f4 $f5 $f6 $done (i32.load (i32.const 0))))
        (local.set $r (call $input_read (local.get $a) (local.get $b))) (br $done))
        (local.set $r (call $output_write (local.get $a) (local.get $b))) (br $done))
        (local.set $r (call $kv_get (local.get $a) (local.get $b) (local.get $c) (local.get $d))) (br $done))
        (local.set $r (call $kv_put (local.get $a) (local.get $b) (local.get $c) (local.get $d))) (br $done))
        (local.set $r (call $perso_len (local.get $a) (local.get $b))) (br $done))
        (local.set $r (call $perso_read (local.get $a) (local.get $b) (local.get $c) (local.get $d))) (br $done))
        (local.set $r (call $input_len)))
    (i32.store (i32.const 16384) (local.get $r))
    (drop (call $output_write (i32.const 16384) (i32.const 4)))
    (i32.const 0)))"#;

const INPUT_READ: i32 = 0;
const OUTPUT_WRITE: i32 = 1;
const KV_GET: i32 = 2;
const KV_PUT: i32 = 3;
const PERSO_LEN: i32 = 4;
const PERSO_READ: i32 = 5;
const INPUT_LEN: i32 = 6;
/// Where the probe's payload starts in its memory.
const PAYLOAD: i32 = 20;
/// The probe's memory size.
const MEM: i32 = 65_536;

struct Probe {
    ta: ValidatedTa,
    store: MemoryTaStore,
}

impl Probe {
    fn new(limits: Limits) -> Self {
        Self {
            ta: install(&Runtime::new(limits), PROBE),
            store: MemoryTaStore::new(),
        }
    }

    /// Calls `func(args)` with `payload` at [`PAYLOAD`]; the result code and what the call
    /// wrote to the output before it.
    fn call(&mut self, func: i32, args: [i32; 4], payload: &[u8]) -> (i32, Vec<u8>) {
        let (code, out, _) = self.call_metered(func, args, payload);
        (code, out)
    }

    /// [`Self::call`], also giving the fuel the invocation used.
    fn call_metered(&mut self, func: i32, args: [i32; 4], payload: &[u8]) -> (i32, Vec<u8>, u64) {
        let mut input: Vec<u8> = [func, args[0], args[1], args[2], args[3]]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        input.extend_from_slice(payload);
        let perso = [Perso {
            name: b"p",
            data: b"perso!",
        }];
        let run = self
            .ta
            .invoke(&mut self.store, TA_A, &perso, &input)
            .unwrap();
        let mut out = run.output;
        let code = out.split_off(out.len() - 4);
        (
            i32::from_le_bytes(code.try_into().unwrap()),
            out,
            run.fuel_used,
        )
    }

    fn code(&mut self, func: i32, args: [i32; 4], payload: &[u8]) -> i32 {
        self.call(func, args, payload).0
    }
}

/// Pointer/length pairs that must all be refused: past the end, straddling the end, a
/// negative length, an address above 2^31 (negative as i32), and ones whose sum
/// overflows 32 bits.
const BAD_RANGES: [(i32, i32); 6] = [
    (MEM, 1),
    (MEM - 2, 4),
    (0, -1),
    (-16, 8),
    (i32::MAX, i32::MAX),
    (-1, i32::MAX),
];

#[test]
fn hostile_pointers_get_e_bounds_and_change_nothing() {
    let mut p = Probe::new(Limits::default());
    for (ptr, len) in BAD_RANGES {
        // Each function with the bad range in each pointer position (for kv_put and
        // perso_read the other range is valid).
        let calls: [(i32, [i32; 4], &[u8]); 8] = [
            (INPUT_READ, [ptr, len, 0, 0], b""),
            (OUTPUT_WRITE, [ptr, len, 0, 0], b""),
            (KV_GET, [ptr, len, 0, 4], b""),
            (KV_PUT, [ptr, len, 0, 1], b""),
            (KV_PUT, [PAYLOAD, 1, ptr, len], b"k"),
            (PERSO_LEN, [ptr, len, 0, 0], b""),
            (PERSO_READ, [ptr, len, 0, 8], b""),
            (PERSO_READ, [PAYLOAD, 1, ptr, len], b"p"),
        ];
        for (func, args, payload) in calls {
            assert_eq!(
                p.call(func, args, payload),
                (abi::E_BOUNDS, vec![]),
                "fn {func} args {args:?}"
            );
        }
    }
    assert_eq!(
        p.store,
        MemoryTaStore::new(),
        "a refused kv_put stored something"
    );
    // A found value with a bad destination is refused too.
    assert_eq!(p.code(KV_PUT, [PAYLOAD, 1, PAYLOAD + 1, 2], b"kvv"), 0);
    for (ptr, len) in BAD_RANGES {
        assert_eq!(p.code(KV_GET, [PAYLOAD, 1, ptr, len], b"k"), abi::E_BOUNDS);
    }
}

#[test]
fn ranges_ending_exactly_at_the_end_of_memory_are_accepted() {
    let mut p = Probe::new(Limits::default());
    assert_eq!(p.call(OUTPUT_WRITE, [MEM, 0, 0, 0], b""), (0, vec![]));
    assert_eq!(
        p.call(OUTPUT_WRITE, [MEM - 3, 3, 0, 0], b""),
        (0, vec![0, 0, 0])
    );
}

#[test]
fn reads_return_the_full_length_and_copy_only_what_fits() {
    let mut p = Probe::new(Limits::default());
    // perso "p" is 6 bytes: a 6-byte buffer gets it, a 5-byte one gets nothing but 6.
    assert_eq!(p.code(PERSO_LEN, [PAYLOAD, 1, 0, 0], b"p"), 6);
    assert_eq!(p.code(PERSO_READ, [PAYLOAD, 1, 1000, 6], b"p"), 6);
    assert_eq!(p.code(PERSO_READ, [PAYLOAD, 1, 1000, 5], b"p"), 6);
    assert_eq!(
        p.code(PERSO_LEN, [PAYLOAD, 1, 0, 0], b"q"),
        abi::E_NOT_FOUND
    );
    assert_eq!(
        p.code(KV_GET, [PAYLOAD, 1, 1000, 16], b"k"),
        abi::E_NOT_FOUND
    );
    // The input is 20 + payload bytes.
    assert_eq!(p.code(INPUT_READ, [1000, 4, 0, 0], b"abc"), 23);
    assert_eq!(p.code(INPUT_LEN, [0; 4], b"abcd"), 24);
}

#[test]
fn output_over_the_limit_is_refused() {
    let mut p = Probe::new(limits(|l| l.max_output = 16));
    assert_eq!(
        p.call(OUTPUT_WRITE, [0, 17, 0, 0], b""),
        (abi::E_TOO_LARGE, vec![])
    );
    // The first 12 bytes of the probe's memory are its input's `[fn, a, b]`.
    let written: Vec<u8> = [OUTPUT_WRITE, 0, 12]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(p.call(OUTPUT_WRITE, [0, 12, 0, 0], b""), (0, written));
}

#[test]
fn keys_values_and_writes_are_size_limited() {
    let limits = Limits::default();
    let mut p = Probe::new(limits);
    let (key, value) = (limits.max_key, limits.max_value);
    let big = vec![b'x'; value + 1];
    let n = |v: usize| i32::try_from(v).unwrap();
    assert_eq!(
        p.code(KV_PUT, [PAYLOAD, n(key + 1), PAYLOAD, 1], &big),
        abi::E_TOO_LARGE
    );
    assert_eq!(
        p.code(KV_GET, [PAYLOAD, n(key + 1), PAYLOAD, 1], &big),
        abi::E_TOO_LARGE
    );
    assert_eq!(
        p.code(KV_PUT, [PAYLOAD, 1, PAYLOAD, n(value + 1)], &big),
        abi::E_TOO_LARGE
    );
    assert_eq!(p.store, MemoryTaStore::new());
    assert_eq!(
        p.code(KV_PUT, [PAYLOAD, n(key), PAYLOAD, n(value)], &big),
        0
    );
    assert_eq!(
        p.store.get(TA_A, &big[..key]).unwrap().map(|v| v.len()),
        Some(value)
    );
}

#[test]
fn one_invocations_writes_are_capped() {
    let rt = Runtime::default();
    // Puts 4 KiB values under keys 0, 1, 2... until a put fails; outputs that code.
    let ta = install(
        &rt,
        r#"(module
          (import "teep" "kv_put" (func $put (param i32 i32 i32 i32) (result i32)))
          (import "teep" "output_write" (func $out (param i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "invoke") (result i32)
            (local $r i32)
            (loop $l
              (local.set $r (call $put (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 4096)))
              (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
              (br_if $l (i32.eqz (local.get $r))))
            (i32.store (i32.const 8) (local.get $r))
            (drop (call $out (i32.const 8) (i32.const 4)))
            (i32.const 0)))"#,
    );
    let mut store = MemoryTaStore::new();
    let out = ta.invoke(&mut store, TA_A, &[], b"").unwrap();
    assert_eq!(out.output, abi::E_QUOTA.to_le_bytes());
    // 64 KiB of budget holds 15 entries of 4 + 4096 bytes.
    assert!(store.get(TA_A, &14u32.to_le_bytes()).unwrap().is_some());
    assert!(store.get(TA_A, &15u32.to_le_bytes()).unwrap().is_none());
}

#[test]
fn host_calls_cost_fuel_per_byte_moved_not_per_byte_claimed() {
    let mut p = Probe::new(Limits::default());
    let (_, _, none) = p.call_metered(OUTPUT_WRITE, [0, 0, 0, 0], b"");
    let (_, out, many) = p.call_metered(OUTPUT_WRITE, [0, 40_000, 0, 0], b"");
    assert_eq!(out.len(), 40_000);
    assert!(many >= none + 40_000, "{many} vs {none}");
    // A refused hostile length is not billed as if it had been copied.
    let (code, _, refused) = p.call_metered(OUTPUT_WRITE, [0, i32::MAX, 0, 0], b"");
    assert_eq!(code, abi::E_BOUNDS);
    assert!(refused < none + 1_000, "{refused} vs {none}");
}

#[test]
fn a_ta_reads_its_own_uncommitted_writes() {
    // Puts k = "abc", reads k back in the same invocation (before anything is committed)
    // and outputs the value read.
    let ta = install(
        &Runtime::default(),
        r#"(module
          (import "teep" "kv_put" (func $put (param i32 i32 i32 i32) (result i32)))
          (import "teep" "kv_get" (func $get (param i32 i32 i32 i32) (result i32)))
          (import "teep" "output_write" (func $out (param i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 0) "kabc")
          (func (export "invoke") (result i32)
            (if (call $put (i32.const 0) (i32.const 1) (i32.const 1) (i32.const 3))
              (then (return (i32.const 1))))
            (if (i32.ne (call $get (i32.const 0) (i32.const 1) (i32.const 100) (i32.const 3))
                        (i32.const 3))
              (then (return (i32.const 2))))
            (call $out (i32.const 100) (i32.const 3))))"#,
    );
    let mut store = MemoryTaStore::new();
    assert_eq!(
        ta.invoke(&mut store, TA_A, &[], b"").unwrap().output,
        b"abc"
    );
    assert_eq!(store.get(TA_A, b"k").unwrap(), Some(b"abc".to_vec()));
}

/// Any arguments to any ABI function give a result code or a typed refusal: the host
/// never panics and the invocation completes.
#[test]
fn arbitrary_arguments_never_break_the_host() {
    use proptest::prelude::*;
    let p = std::cell::RefCell::new(Probe::new(Limits::default()));
    let near_end = prop_oneof![any::<i32>(), (MEM - 64)..=(MEM + 64), -64..=64i32];
    let args = proptest::array::uniform4(near_end);
    proptest!(ProptestConfig::with_cases(512), |(func in 0..=INPUT_LEN, args in args)| {
        let (code, _) = p.borrow_mut().call(func, args, b"kvalue");
        prop_assert!(code >= abi::E_QUOTA, "fn {func} {args:?} gave {code}");
    });
}

/// Each invocation gets a fresh instance: nothing survives in memory or globals.
#[test]
fn no_state_survives_between_invocations_outside_the_store() {
    let ta = install(
        &Runtime::default(),
        r#"(module
          (import "teep" "output_write" (func $out (param i32 i32) (result i32)))
          (memory (export "memory") 1)
          (global $g (mut i32) (i32.const 0))
          (func (export "invoke") (result i32)
            (global.set $g (i32.add (global.get $g) (i32.const 1)))
            (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (global.get $g)))
            (call $out (i32.const 0) (i32.const 4))))"#,
    );
    let mut store = MemoryTaStore::new();
    for _ in 0..2 {
        let out = ta.invoke(&mut store, TA_A, &[], b"").unwrap().output;
        assert_eq!(out, 1i32.to_le_bytes());
    }
}

// ---- all-or-nothing writes ----

#[test]
fn failed_or_trapped_invocations_apply_no_writes() {
    let rt = Runtime::default();
    for tail in [
        "(unreachable)",
        "(i32.const 7)",
        "(drop (i32.load (i32.const 70000))) (i32.const 0)",
    ] {
        let ta = install(
            &rt,
            &format!(
                r#"(module
                  (import "teep" "kv_put" (func $put (param i32 i32 i32 i32) (result i32)))
                  (memory (export "memory") 1)
                  (func (export "invoke") (result i32)
                    (drop (call $put (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1)))
                    {tail}))"#
            ),
        );
        let mut store = MemoryTaStore::new();
        let err = ta.invoke(&mut store, TA_A, &[], b"").unwrap_err();
        assert!(
            matches!(err, RuntimeError::Trap(_) | RuntimeError::TaFailed(7)),
            "{tail}: {err:?}"
        );
        assert_eq!(store, MemoryTaStore::new(), "{tail}");
    }
}

/// A store whose reads or writes fail.
struct Broken {
    inner: MemoryTaStore,
    fail_get: bool,
}

impl TaStore for Broken {
    fn get(&self, component: &[u8], key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if self.fail_get {
            return Err(StoreError::Backend("disk".into()));
        }
        self.inner.get(component, key)
    }

    fn put_all(&mut self, _: &[u8], _: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StoreError> {
        Err(StoreError::Backend("disk full".into()))
    }
}

#[test]
fn store_failures_are_reported() {
    let rt = Runtime::default();
    let ta = rt.validate(&sample("counter-v1")).unwrap();
    for (fail_get, why) in [(true, "disk"), (false, "disk full")] {
        let mut store = Broken {
            inner: MemoryTaStore::new(),
            fail_get,
        };
        assert_eq!(
            ta.invoke(&mut store, TA_A, &[GREETING], b""),
            Err(RuntimeError::Store(StoreError::Backend(why.into())))
        );
        assert_eq!(store.inner, MemoryTaStore::new());
    }
}
