//! `cairn-wit-tools c-bindings WIT_DIR WORLD OUT_DIR` writes the C bindings of a world
//! (`<world>.h`, `<world>.c`, `<world>_component_type.o`); `cairn-wit-tools componentize WIT_DIR WORLD CORE.wasm OUT.wasm` wraps a core
//! module that exports the world into a component, refusing one that imports WASI;
//! `componentize-go` does the same for a Go module (`GOOS=wasip1`), whose runtime imports
//! WASI preview 1, through the preview 1 adapter, which maps it onto the WASI the host
//! provides.

use std::path::Path;

use anyhow::{Context, bail};
use wit_parser::{Resolve, WorldId};

const USAGE: &str = "usage: cairn-wit-tools c-bindings WIT_DIR WORLD OUT_DIR
       cairn-wit-tools componentize WIT_DIR WORLD CORE.wasm OUT.wasm
       cairn-wit-tools componentize-go WIT_DIR WORLD CORE.wasm OUT.wasm";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["c-bindings", wit_dir, world, out] => {
            c_bindings(Path::new(wit_dir), world, Path::new(out))
        }
        ["componentize", wit_dir, world, core, out] => componentize(
            Path::new(wit_dir),
            world,
            Path::new(core),
            Path::new(out),
            false,
        ),
        ["componentize-go", wit_dir, world, core, out] => componentize(
            Path::new(wit_dir),
            world,
            Path::new(core),
            Path::new(out),
            true,
        ),
        _ => bail!("{USAGE}"),
    }
}

fn wit(dir: &Path, world: &str) -> anyhow::Result<(Resolve, WorldId)> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_path(dir)
        .with_context(|| format!("cannot parse {}", dir.display()))?;
    let world = resolve.select_world(&[package], Some(world))?;
    Ok((resolve, world))
}

fn c_bindings(wit_dir: &Path, world: &str, dir: &Path) -> anyhow::Result<()> {
    let (mut resolve, world) = wit(wit_dir, world)?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)
        .with_context(|| format!("cannot generate the C bindings of {}", wit_dir.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, contents) in files.iter() {
        let path = dir.join(name);
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn componentize(
    wit_dir: &Path,
    world: &str,
    core: &Path,
    out: &Path,
    go: bool,
) -> anyhow::Result<()> {
    let mut module =
        std::fs::read(core).with_context(|| format!("cannot read {}", core.display()))?;
    if go {
        module = go_adapter_realloc(&module)
            .with_context(|| format!("cannot prepare {} for the WASI adapter", core.display()))?;
    }
    let mut wasi = Vec::new();
    let mut has_component_type = false;
    for payload in wasmparser::Parser::new(0).parse_all(&module) {
        match payload? {
            wasmparser::Payload::ImportSection(section) => {
                for import in section.into_imports() {
                    let import = import?;
                    if import.module.starts_with("wasi") {
                        wasi.push(format!("{}::{}", import.module, import.name));
                    }
                }
            }
            wasmparser::Payload::CustomSection(section) => {
                has_component_type |= section.name().starts_with("component-type");
            }
            _ => {}
        }
    }
    if !wasi.is_empty() && !go {
        if wasi.len() > 4 {
            let more = wasi.len() - 3;
            wasi.truncate(3);
            wasi.push(format!("and {more} more"));
        }
        bail!(
            "{} imports WASI ({}): C and Zig jobs are built without WASI, so they may use \
             libc's memory, string and formatting functions but no I/O (stdio, files, clocks); \
             log with cairn_log (C) or cairn.log/std.log (Zig, with cairn.panic and \
             cairn.logFn declared in the root file)",
            core.display(),
            wasi.join(", ")
        );
    }
    if !has_component_type {
        // A linker that dropped the bindings' custom section: put the world back in.
        let (resolve, world) = wit(wit_dir, world)?;
        wit_component::embed_component_metadata(
            &mut module,
            &resolve,
            world,
            wit_component::StringEncoding::UTF8,
            false,
        )?;
    }
    let mut encoder = wit_component::ComponentEncoder::default();
    encoder.module(&module)?;
    if go {
        encoder.adapter(
            "wasi_snapshot_preview1",
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?;
    }
    let component = encoder
        .validate(true)
        .encode()
        .with_context(|| format!("cannot make a component of {}", core.display()))?;
    std::fs::write(out, component).with_context(|| format!("cannot write {}", out.display()))
}

/// The marker that ends the Go SDK's `adapterArena` (guest-sdk/go/arena_wasm.go).
const GO_ARENA_MARKER: &[u8] = b"cairn-go-adapter-arena!!";
/// The size of the arena before the marker, in bytes.
const GO_ARENA_SIZE: u32 = 3 << 16;

/// Gives a Go core module a `cabi_realloc` for the WASI adapter: a bump allocator over the
/// SDK's `adapterArena`, a Go array the runtime never uses. The adapter allocates its stack
/// and state on its first call, from the runtime's initialisation, when no Go code can run
/// yet; and memory it took with `memory.grow` Go's allocator would hand out again. (The
/// SDK's own allocator, for the exports' arguments, is `cabi_export_realloc`.)
fn go_adapter_realloc(module: &[u8]) -> anyhow::Result<Vec<u8>> {
    use wasmparser::{Payload, TypeRef};
    let mut arena = None;
    let (mut imported_funcs, mut defined_funcs, mut imported_globals, mut defined_globals) =
        (0u32, 0u32, 0u32, 0u32);
    let mut types = 0u32;
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        match payload? {
            Payload::TypeSection(s) => types = s.count(),
            Payload::ImportSection(s) => {
                for import in s.into_imports() {
                    match import?.ty {
                        TypeRef::Func(_) => imported_funcs += 1,
                        TypeRef::Global(_) => imported_globals += 1,
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(s) => defined_funcs = s.count(),
            Payload::GlobalSection(s) => defined_globals = s.count(),
            Payload::DataSection(s) => {
                for data in s {
                    let data = data?;
                    let wasmparser::DataKind::Active { offset_expr, .. } = data.kind else {
                        continue;
                    };
                    let Some(at) = data
                        .data
                        .windows(GO_ARENA_MARKER.len())
                        .position(|w| w == GO_ARENA_MARKER)
                    else {
                        continue;
                    };
                    let wasmparser::Operator::I32Const { value } =
                        offset_expr.get_operators_reader().read()?
                    else {
                        bail!("a data segment at a computed address");
                    };
                    arena = Some(value as u32 + at as u32 - GO_ARENA_SIZE);
                }
            }
            _ => {}
        }
    }
    let start = arena.context("no adapterArena: is this a module of the Go SDK (guest-sdk/go)?")?;
    let end = start + GO_ARENA_SIZE;
    let func = imported_funcs + defined_funcs;
    let global = imported_globals + defined_globals;

    // (old, old_size, align, size) -> ptr: `next` aligned up, trapping past the arena.
    let mut body = vec![0x01, 0x02, 0x7f]; // locals 4 (ptr) and 5 (end): i32
    body.extend([0x23]);
    leb(&mut body, global); // global.get $next
    body.extend([0x20, 0x02, 0x6a, 0x41, 0x01, 0x6b]); // + align - 1
    body.extend([0x41, 0x00, 0x20, 0x02, 0x6b, 0x71]); // & -align
    body.extend([0x22, 0x04, 0x20, 0x03, 0x6a, 0x22, 0x05]); // ptr; end = ptr + size
    body.push(0x41);
    sleb(&mut body, end);
    body.extend([0x4b, 0x04, 0x40, 0x00, 0x0b]); // if end > arena end: unreachable
    body.extend([0x20, 0x05, 0x24]);
    leb(&mut body, global); // next = end
    body.extend([0x20, 0x04, 0x0b]); // ptr
    let mut code = Vec::new();
    leb(&mut code, body.len() as u32);
    code.extend(body);

    let mut global_item = vec![0x7f, 0x01, 0x41];
    sleb(&mut global_item, start);
    global_item.push(0x0b);
    let mut export = Vec::new();
    leb(&mut export, "cabi_realloc".len() as u32);
    export.extend(b"cabi_realloc");
    export.push(0x00);
    leb(&mut export, func);
    let mut function = Vec::new();
    leb(&mut function, types);

    let mut out = module[..8].to_vec();
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        let Some((id, range)) = payload?.as_section() else {
            continue;
        };
        let body = &module[range.start as usize..range.end as usize];
        let item: &[u8] = match id {
            1 => &[0x60, 0x04, 0x7f, 0x7f, 0x7f, 0x7f, 0x01, 0x7f],
            3 => &function,
            6 => &global_item,
            7 => &export,
            10 => &code,
            _ => &[],
        };
        out.push(id);
        if item.is_empty() {
            leb(&mut out, body.len() as u32);
            out.extend(body);
            continue;
        }
        let mut reader = wasmparser::BinaryReader::new(body, 0);
        let count = reader.read_var_u32()?;
        let items = &body[reader.original_position() as usize..];
        let mut section = Vec::new();
        leb(&mut section, count + 1);
        section.extend(items);
        section.extend(item);
        leb(&mut out, section.len() as u32);
        out.extend(section);
    }
    Ok(out)
}

fn leb(out: &mut Vec<u8>, mut n: u32) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A signed LEB128 of an i32 constant (`n` as i32).
fn sleb(out: &mut Vec<u8>, n: u32) {
    let mut n = n as i32;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if (n == 0 && byte & 0x40 == 0) || (n == -1 && byte & 0x40 != 0) {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
