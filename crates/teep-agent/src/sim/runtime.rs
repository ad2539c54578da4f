//! The TA runtime: WebAssembly TAs run by `wasmi` through the ABI of `docs/ta-abi.md`.
//!
//! A TA gets nothing but what the ABI's host functions give it: its input, an output
//! buffer, its own key-value store and the personalization data that depends on it. There
//! is no clock, no randomness, no file or network access, no way to name another TA.
//! Every host function checks the guest's pointers against the TA's linear memory and
//! answers a bad one with [`abi::E_BOUNDS`]; nothing a TA does panics the host.

use alloc::borrow::ToOwned;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::ops::Range;

use wasmi::{
    Caller, CompilationMode, Config, EnforcedLimits, Engine, Error, Extern, ExternType, FuncType,
    Linker, Module, Store, StoreLimits, StoreLimitsBuilder, TrapCode, ValType,
};

use super::store::{MemoryTaStore, StoreError, TaStore};

/// The ABI's names, return codes and import table (`docs/ta-abi.md`).
pub mod abi {
    /// The only import module a TA may use.
    pub const MODULE: &str = "teep";
    /// The required function export: `invoke() -> i32`, 0 for success.
    pub const INVOKE: &str = "invoke";
    /// The required memory export through which the host reads and writes.
    pub const MEMORY: &str = "memory";

    /// A pointer/length pair is negative or reaches outside the TA's linear memory.
    pub const E_BOUNDS: i32 = -1;
    /// No value under that key, or no personalization data of that name.
    pub const E_NOT_FOUND: i32 = -2;
    /// A key, value or the total output is over its limit; nothing was stored or written.
    pub const E_TOO_LARGE: i32 = -3;
    /// This invocation's writes would exceed the write budget; nothing was stored.
    pub const E_QUOTA: i32 = -4;

    /// Every ABI function with its number of `i32` parameters; each returns one `i32`.
    pub const FUNCTIONS: &[(&str, usize)] = &[
        ("input_len", 0),
        ("input_read", 2),
        ("output_write", 2),
        ("kv_get", 4),
        ("kv_put", 4),
        ("perso_len", 2),
        ("perso_read", 4),
    ];
}

/// Bytes in one WebAssembly page.
const PAGE: u64 = 65_536;
/// Fuel a host call costs on top of one unit per byte it copies, so a loop of host calls
/// cannot run for free.
const HOST_CALL_FUEL: u64 = 100;

/// What one TA may use. [`Limits::default`] suits the sample TAs and small services;
/// change a field of it for other needs (`#[non_exhaustive]`: fields may be added).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Fuel for one invocation (about one unit per instruction, plus host-call costs).
    pub fuel: u64,
    /// Linear memory cap in 64 KiB pages, initial size included.
    pub memory_pages: u32,
    /// Largest module accepted at install.
    pub max_module_bytes: usize,
    /// Largest input accepted by [`ValidatedTa::invoke`].
    pub max_input: usize,
    /// Largest output a TA may write in one invocation.
    pub max_output: usize,
    /// Largest key for `kv_get` / `kv_put`.
    pub max_key: usize,
    /// Largest value for `kv_put`.
    pub max_value: usize,
    /// Bytes (keys plus values) one invocation may write to its store.
    pub max_write_bytes: usize,
    /// Table elements a TA may have.
    pub table_elements: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: 10_000_000,
            memory_pages: 16,
            max_module_bytes: 1 << 20,
            max_input: 64 << 10,
            max_output: 64 << 10,
            max_key: 256,
            max_value: 4 << 10,
            max_write_bytes: 64 << 10,
            table_elements: 1024,
        }
    }
}

impl Limits {
    fn memory_bytes(&self) -> usize {
        usize::try_from(u64::from(self.memory_pages).saturating_mul(PAGE)).unwrap_or(usize::MAX)
    }
}

/// Why a TA was refused at install or an invocation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The module is larger than [`Limits::max_module_bytes`].
    #[error("TA module of {len} bytes exceeds the {max}-byte limit")]
    ModuleTooLarge {
        /// The module's size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a valid WebAssembly module for this runtime (malformed, fails validation, uses
    /// a disabled feature or a start function, or exceeds wasmi's structural limits).
    #[error("invalid TA module: {0}")]
    Invalid(String),
    /// An import the ABI does not offer (another module, an unknown function, or any
    /// non-function import).
    #[error("TA imports {module}.{name}, which the TA ABI does not offer")]
    ForbiddenImport {
        /// Import module name.
        module: String,
        /// Import field name.
        name: String,
    },
    /// An ABI function imported with the wrong signature.
    #[error("TA imports teep.{0} with the wrong signature")]
    ImportSignature(String),
    /// A required export is absent.
    #[error("TA does not export `{0}`")]
    MissingExport(&'static str),
    /// A required export has the wrong kind or signature.
    #[error("TA export `{0}` has the wrong type")]
    ExportSignature(&'static str),
    /// The declared initial memory is over [`Limits::memory_pages`].
    #[error("TA declares {pages} initial memory pages, over the {max}-page limit")]
    MemoryTooLarge {
        /// Declared initial pages.
        pages: u64,
        /// The limit.
        max: u32,
    },
    /// Instantiation failed (e.g. a data or element segment out of range).
    #[error("TA instantiation failed: {0}")]
    Instantiation(String),
    /// The input is larger than [`Limits::max_input`].
    #[error("input of {len} bytes exceeds the {max}-byte limit")]
    InputTooLarge {
        /// The input's size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The fuel budget ran out.
    #[error("TA ran out of fuel")]
    OutOfFuel,
    /// The TA tried to grow memory (or a table) past its limit.
    #[error("TA hit its memory limit")]
    MemoryLimit,
    /// The TA's call stack got too deep.
    #[error("TA call stack overflow")]
    StackOverflow,
    /// Any other trap (unreachable, its own out-of-bounds access, division by zero...).
    #[error("TA trapped: {0}")]
    Trap(String),
    /// `invoke` returned this non-zero status.
    #[error("TA returned failure status {0}")]
    TaFailed(i32),
    /// The TA store failed while the TA ran or when its writes were applied.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One personalization data TC that depends on the invoked TA, under the name the Agent
/// gives it (the ABI's `perso_len` / `perso_read` look it up by that name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perso<'a> {
    /// Lookup name.
    pub name: &'a [u8],
    /// Contents (already decrypted and verified by the SUIT processor).
    pub data: &'a [u8],
}

/// The result of a successful invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Invocation {
    /// What the TA wrote with `output_write`.
    pub output: Vec<u8>,
    /// Fuel consumed.
    pub fuel_used: u64,
}

/// Validates and runs TAs under one set of [`Limits`].
#[derive(Debug, Clone)]
pub struct Runtime {
    engine: Engine,
    limits: Limits,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl Runtime {
    /// A runtime that meters fuel, translates eagerly (so every function body is checked at
    /// install), refuses start functions (code would run before any invocation) and applies
    /// wasmi's strict structural limits against modules built to exhaust the compiler.
    pub fn new(limits: Limits) -> Self {
        let mut config = Config::default();
        config
            .consume_fuel(true)
            .allow_start_fn(false)
            .compilation_mode(CompilationMode::Eager)
            .enforced_limits(EnforcedLimits::strict())
            .wasm_multi_memory(false)
            .wasm_custom_page_sizes(false);
        Self {
            engine: Engine::new(&config),
            limits,
        }
    }

    /// The limits TAs run under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The install-time check: `module` must be a valid WebAssembly binary whose imports are
    /// only ABI functions with their exact signatures, which exports `invoke: () -> i32`
    /// and a `memory` within the limit, and which instantiates.
    pub fn validate(&self, module: &[u8]) -> Result<ValidatedTa, RuntimeError> {
        let max = self.limits.max_module_bytes;
        if module.len() > max {
            return Err(RuntimeError::ModuleTooLarge {
                len: module.len(),
                max,
            });
        }
        let module =
            Module::new(&self.engine, module).map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        for import in module.imports() {
            check_import(import.module(), import.name(), import.ty())?;
        }
        match module.get_export(abi::INVOKE) {
            None => return Err(RuntimeError::MissingExport(abi::INVOKE)),
            Some(ExternType::Func(ty))
                if ty.params().is_empty() && ty.results() == [ValType::I32] => {}
            Some(_) => return Err(RuntimeError::ExportSignature(abi::INVOKE)),
        }
        match module.get_export(abi::MEMORY) {
            None => return Err(RuntimeError::MissingExport(abi::MEMORY)),
            Some(ExternType::Memory(ty)) => {
                if ty.minimum() > u64::from(self.limits.memory_pages) {
                    return Err(RuntimeError::MemoryTooLarge {
                        pages: ty.minimum(),
                        max: self.limits.memory_pages,
                    });
                }
            }
            Some(_) => return Err(RuntimeError::ExportSignature(abi::MEMORY)),
        }
        let ta = ValidatedTa {
            module,
            limits: self.limits,
        };
        // A trial instantiation catches what only instantiation checks (segments in range,
        // tables within the limit) so such a module fails the install, not every invocation.
        let store = MemoryTaStore::new();
        let mut wasm_store = ta.wasm_store(&store, &[], &[]);
        linker(&self.engine)
            .instantiate_and_start(&mut wasm_store, &ta.module)
            .map_err(|e| RuntimeError::Instantiation(e.to_string()))?;
        Ok(ta)
    }
}

/// Accepts an import only if it is an ABI function with its exact signature.
fn check_import(module: &str, name: &str, ty: &ExternType) -> Result<(), RuntimeError> {
    let forbidden = || RuntimeError::ForbiddenImport {
        module: module.to_owned(),
        name: name.to_owned(),
    };
    if module != abi::MODULE {
        return Err(forbidden());
    }
    let &(_, params) = abi::FUNCTIONS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(forbidden)?;
    let ExternType::Func(ty) = ty else {
        return Err(forbidden());
    };
    let expected = FuncType::new(core::iter::repeat_n(ValType::I32, params), [ValType::I32]);
    if *ty != expected {
        return Err(RuntimeError::ImportSignature(name.to_owned()));
    }
    Ok(())
}

/// A module that passed [`Runtime::validate`], compiled and ready to invoke.
#[derive(Debug, Clone)]
pub struct ValidatedTa {
    module: Module,
    limits: Limits,
}

impl ValidatedTa {
    /// Runs `invoke` once for the TA `component` on `input`, with `perso` readable and
    /// `store` as its key-value store. The TA's `kv_put`s are applied to `store` (through
    /// [`TaStore::put_all`]) only if `invoke` returns 0; on any error `store` is unchanged.
    pub fn invoke(
        &self,
        store: &mut dyn TaStore,
        component: &[u8],
        perso: &[Perso<'_>],
        input: &[u8],
    ) -> Result<Invocation, RuntimeError> {
        let max = self.limits.max_input;
        if input.len() > max {
            return Err(RuntimeError::InputTooLarge {
                len: input.len(),
                max,
            });
        }
        let (output, writes, fuel_used) = {
            let mut wasm_store = self.wasm_store(&*store, component, perso);
            wasm_store.data_mut().input = input;
            let result = self.run(&mut wasm_store);
            let fuel_used = self
                .limits
                .fuel
                .saturating_sub(wasm_store.get_fuel().unwrap_or(0));
            let host = wasm_store.into_data();
            if let Some(e) = host.failure {
                return Err(e.into());
            }
            match result {
                Ok(0) => {}
                Ok(status) => return Err(RuntimeError::TaFailed(status)),
                Err(e) => return Err(classify(&e)),
            }
            let writes: Vec<_> = host.writes.into_iter().collect();
            (host.output, writes, fuel_used)
        };
        if !writes.is_empty() {
            store.put_all(component, &writes)?;
        }
        Ok(Invocation { output, fuel_used })
    }

    fn run(&self, wasm_store: &mut Store<Host<'_>>) -> Result<i32, Error> {
        let instance =
            linker(wasm_store.engine()).instantiate_and_start(&mut *wasm_store, &self.module)?;
        let invoke = instance.get_typed_func::<(), i32>(&*wasm_store, abi::INVOKE)?;
        invoke.call(wasm_store, ())
    }

    fn wasm_store<'a>(
        &self,
        store: &'a dyn TaStore,
        component: &'a [u8],
        perso: &'a [Perso<'a>],
    ) -> Store<Host<'a>> {
        let host = Host {
            store,
            component,
            perso,
            input: &[],
            output: Vec::new(),
            writes: BTreeMap::new(),
            write_bytes: 0,
            failure: None,
            limits: self.limits,
            resources: StoreLimitsBuilder::new()
                .memory_size(self.limits.memory_bytes())
                .table_elements(usize::try_from(self.limits.table_elements).unwrap_or(usize::MAX))
                .instances(1)
                .memories(1)
                .tables(1)
                .trap_on_grow_failure(true)
                .build(),
        };
        let mut wasm_store = Store::new(self.module.engine(), host);
        wasm_store.limiter(|host| &mut host.resources);
        // Fuel metering is on in every engine a `Runtime` makes, so this cannot fail; were
        // it to, the TA would simply start with no fuel and fail `OutOfFuel`.
        let _ = wasm_store.set_fuel(self.limits.fuel);
        wasm_store
    }
}

/// Maps a wasmi execution error to ours.
fn classify(error: &Error) -> RuntimeError {
    if let Some(code) = error.as_trap_code() {
        return match code {
            TrapCode::OutOfFuel => RuntimeError::OutOfFuel,
            TrapCode::StackOverflow => RuntimeError::StackOverflow,
            TrapCode::GrowthOperationLimited => RuntimeError::MemoryLimit,
            other => RuntimeError::Trap(other.to_string()),
        };
    }
    match error.kind() {
        wasmi::errors::ErrorKind::Memory(_) | wasmi::errors::ErrorKind::Table(_) => {
            RuntimeError::MemoryLimit
        }
        wasmi::errors::ErrorKind::Instantiation(_) => {
            RuntimeError::Instantiation(error.to_string())
        }
        _ => RuntimeError::Trap(error.to_string()),
    }
}

/// What the host functions see: the invocation's inputs and the writes it has made so far.
struct Host<'a> {
    store: &'a dyn TaStore,
    component: &'a [u8],
    perso: &'a [Perso<'a>],
    input: &'a [u8],
    output: Vec<u8>,
    /// This invocation's `kv_put`s, read back by `kv_get`, applied only on success.
    writes: BTreeMap<Vec<u8>, Vec<u8>>,
    write_bytes: usize,
    /// A store failure seen by a host function (the TA traps and this is reported).
    failure: Option<StoreError>,
    limits: Limits,
    resources: StoreLimits,
}

/// A linker offering exactly the ABI functions.
fn linker<'a>(engine: &Engine) -> Linker<Host<'a>> {
    let mut linker = Linker::new(engine);
    // Each name is defined once into a fresh linker, so these cannot collide.
    let _ = linker.func_wrap(abi::MODULE, "input_len", input_len);
    let _ = linker.func_wrap(abi::MODULE, "input_read", input_read);
    let _ = linker.func_wrap(abi::MODULE, "output_write", output_write);
    let _ = linker.func_wrap(abi::MODULE, "kv_get", kv_get);
    let _ = linker.func_wrap(abi::MODULE, "kv_put", kv_put);
    let _ = linker.func_wrap(abi::MODULE, "perso_len", perso_len);
    let _ = linker.func_wrap(abi::MODULE, "perso_read", perso_read);
    linker
}

/// The guest range `[ptr, ptr + len)` if `len` is not negative and it lies inside a memory
/// of `size` bytes. `ptr` is an unsigned Wasm address; the sum is computed without overflow.
fn guest_range(ptr: i32, len: i32, size: usize) -> Result<Range<usize>, i32> {
    let start = usize::try_from(ptr.cast_unsigned()).map_err(|_| abi::E_BOUNDS)?;
    let len = usize::try_from(len).map_err(|_| abi::E_BOUNDS)?;
    let end = start.checked_add(len).ok_or(abi::E_BOUNDS)?;
    if end > size {
        return Err(abi::E_BOUNDS);
    }
    Ok(start..end)
}

/// A length as an ABI return value.
fn len_code(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(abi::E_TOO_LARGE)
}

/// What a host function's body yields: the ABI return value and the bytes it moved (the
/// fuel it costs), or an error code (no bytes moved).
type Outcome = Result<(i32, usize), i32>;

/// Runs one host function body on the TA's memory and the host state, then charges
/// [`HOST_CALL_FUEL`] plus one unit per byte moved. Charging after the body means only
/// bytes actually copied are paid for (a hostile length is refused, not billed); a
/// budget that cannot cover it traps `OutOfFuel`, which discards whatever the call did.
/// A store failure the body recorded traps too. Validation guarantees the `memory`
/// export; should it be absent the call traps.
fn host_call<'h>(
    caller: &mut Caller<'_, Host<'h>>,
    body: impl FnOnce(&mut [u8], &mut Host<'h>) -> Outcome,
) -> Result<i32, Error> {
    let Some(Extern::Memory(memory)) = caller.get_export(abi::MEMORY) else {
        return Err(Error::from(TrapCode::UnreachableCodeReached));
    };
    let (mem, host) = memory.data_and_store_mut(&mut *caller);
    let (code, moved) = body(mem, host).unwrap_or_else(|code| (code, 0));
    if caller.data().failure.is_some() {
        return Err(Error::new("TA store failed"));
    }
    let cost = HOST_CALL_FUEL.saturating_add(u64::try_from(moved).unwrap_or(u64::MAX));
    match caller.get_fuel()?.checked_sub(cost) {
        Some(rest) => caller.set_fuel(rest)?,
        None => {
            caller.set_fuel(0)?;
            return Err(Error::from(TrapCode::OutOfFuel));
        }
    }
    Ok(code)
}

/// The guest bytes `(ptr, len)`.
fn guest(mem: &[u8], ptr: i32, len: i32) -> Result<&[u8], i32> {
    let range = guest_range(ptr, len, mem.len())?;
    mem.get(range).ok_or(abi::E_BOUNDS)
}

/// The "copy out" rule shared by `input_read`, `kv_get` and `perso_read`: the guest buffer
/// `(ptr, cap)` must be in memory; `data` is copied into it if it fits; the result is
/// `data`'s full length either way (so a result above `cap` means "nothing copied").
fn copy_out(mem: &mut [u8], ptr: i32, cap: i32, data: &[u8]) -> Outcome {
    let range = guest_range(ptr, cap, mem.len())?;
    let n = len_code(data.len());
    if n < 0 || data.len() > range.len() {
        return Ok((n, 0));
    }
    let start = range.start;
    let dst = start
        .checked_add(data.len())
        .and_then(|end| mem.get_mut(start..end))
        .ok_or(abi::E_BOUNDS)?;
    dst.copy_from_slice(data);
    Ok((n, data.len()))
}

/// `input_len() -> i32`: the input's length.
fn input_len(mut caller: Caller<'_, Host<'_>>) -> Result<i32, Error> {
    host_call(&mut caller, |_, host| Ok((len_code(host.input.len()), 0)))
}

/// `input_read(ptr, cap) -> i32`: copies the input to `ptr` if it fits in `cap`.
fn input_read(mut caller: Caller<'_, Host<'_>>, ptr: i32, cap: i32) -> Result<i32, Error> {
    host_call(&mut caller, |mem, host| copy_out(mem, ptr, cap, host.input))
}

/// `output_write(ptr, len) -> i32`: appends `len` bytes at `ptr` to the output; 0, or
/// `E_TOO_LARGE` (nothing appended) past [`Limits::max_output`].
fn output_write(mut caller: Caller<'_, Host<'_>>, ptr: i32, len: i32) -> Result<i32, Error> {
    host_call(&mut caller, |mem, host| {
        let bytes = guest(mem, ptr, len)?;
        if host.output.len().saturating_add(bytes.len()) > host.limits.max_output {
            return Err(abi::E_TOO_LARGE);
        }
        host.output.extend_from_slice(bytes);
        Ok((0, bytes.len()))
    })
}

/// `kv_get(key_ptr, key_len, val_ptr, val_cap) -> i32`: the value's length (copied if it
/// fits), `E_NOT_FOUND`, or an error code. Sees this invocation's own writes.
fn kv_get(
    mut caller: Caller<'_, Host<'_>>,
    key_ptr: i32,
    key_len: i32,
    val_ptr: i32,
    val_cap: i32,
) -> Result<i32, Error> {
    host_call(&mut caller, |mem, host| {
        let key = guest(mem, key_ptr, key_len)?;
        if key.len() > host.limits.max_key {
            return Err(abi::E_TOO_LARGE);
        }
        let value = match host.writes.get(key) {
            Some(value) => value.clone(),
            None => match host.store.get(host.component, key) {
                Ok(Some(value)) => value,
                Ok(None) => return Err(abi::E_NOT_FOUND),
                Err(e) => {
                    host.failure = Some(e);
                    return Err(abi::E_NOT_FOUND);
                }
            },
        };
        let key_len = key.len();
        copy_out(mem, val_ptr, val_cap, &value).map(|(n, moved)| (n, moved + key_len))
    })
}

/// `kv_put(key_ptr, key_len, val_ptr, val_len) -> i32`: records the value under the key
/// for this invocation; 0, or an error code with nothing recorded.
fn kv_put(
    mut caller: Caller<'_, Host<'_>>,
    key_ptr: i32,
    key_len: i32,
    val_ptr: i32,
    val_len: i32,
) -> Result<i32, Error> {
    host_call(&mut caller, |mem, host| {
        let key = guest(mem, key_ptr, key_len)?;
        let value = guest(mem, val_ptr, val_len)?;
        if key.len() > host.limits.max_key || value.len() > host.limits.max_value {
            return Err(abi::E_TOO_LARGE);
        }
        let moved = key.len() + value.len();
        let total = host.write_bytes.saturating_add(moved);
        if total > host.limits.max_write_bytes {
            return Err(abi::E_QUOTA);
        }
        host.write_bytes = total;
        host.writes.insert(key.to_vec(), value.to_vec());
        Ok((0, moved))
    })
}

/// The personalization data named by the guest bytes `(name_ptr, name_len)`.
fn find_perso<'a>(
    mem: &[u8],
    host: &Host<'a>,
    name_ptr: i32,
    name_len: i32,
) -> Result<&'a [u8], i32> {
    let name = guest(mem, name_ptr, name_len)?;
    host.perso
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.data)
        .ok_or(abi::E_NOT_FOUND)
}

/// `perso_len(name_ptr, name_len) -> i32`: the named personalization data's length.
fn perso_len(mut caller: Caller<'_, Host<'_>>, name_ptr: i32, name_len: i32) -> Result<i32, Error> {
    host_call(&mut caller, |mem, host| {
        let data = find_perso(mem, host, name_ptr, name_len)?;
        Ok((len_code(data.len()), 0))
    })
}

/// `perso_read(name_ptr, name_len, buf_ptr, buf_cap) -> i32`: copies the named
/// personalization data to `buf_ptr` if it fits; returns its length or an error code.
fn perso_read(
    mut caller: Caller<'_, Host<'_>>,
    name_ptr: i32,
    name_len: i32,
    buf_ptr: i32,
    buf_cap: i32,
) -> Result<i32, Error> {
    host_call(&mut caller, |mem, host| {
        let data = find_perso(mem, host, name_ptr, name_len)?;
        copy_out(mem, buf_ptr, buf_cap, data)
    })
}
