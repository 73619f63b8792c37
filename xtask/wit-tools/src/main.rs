//! `cairn-wit-tools c-bindings WIT_DIR WORLD OUT_DIR` writes the C bindings of a world
//! (`<world>.h`, `<world>.c`, `<world>_component_type.o`); `cairn-wit-tools componentize WIT_DIR WORLD CORE.wasm OUT.wasm` wraps a core
//! module that exports the world into a component, refusing one that imports WASI.

use std::path::Path;

use anyhow::{Context, bail};
use wit_parser::{Resolve, WorldId};

const USAGE: &str = "usage: cairn-wit-tools c-bindings WIT_DIR WORLD OUT_DIR
       cairn-wit-tools componentize WIT_DIR WORLD CORE.wasm OUT.wasm";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["c-bindings", wit_dir, world, out] => {
            c_bindings(Path::new(wit_dir), world, Path::new(out))
        }
        ["componentize", wit_dir, world, core, out] => {
            componentize(Path::new(wit_dir), world, Path::new(core), Path::new(out))
        }
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

fn componentize(wit_dir: &Path, world: &str, core: &Path, out: &Path) -> anyhow::Result<()> {
    let mut module =
        std::fs::read(core).with_context(|| format!("cannot read {}", core.display()))?;
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
    if !wasi.is_empty() {
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
    let component = wit_component::ComponentEncoder::default()
        .module(&module)?
        .validate(true)
        .encode()
        .with_context(|| format!("cannot make a component of {}", core.display()))?;
    std::fs::write(out, component).with_context(|| format!("cannot write {}", out.display()))
}
