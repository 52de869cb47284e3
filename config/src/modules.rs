//! Kernel module dependency model, read from depmod's text files in
//! `/lib/modules/KVER`. Pure: the image builder uses it to choose which
//! `.ko` files to pack, and PID 1 to load them in a working order.
//!
//! Sources and how they are used:
//! - `modules.dep`: `path.ko: dep.ko dep.ko ...`, the transitive closure of
//!   hard dependencies, listed so that loading them in *reverse* order loads
//!   the deepest first. We still visit dependencies depth-first, so a
//!   hand-written subset whose lists are not closed also comes out right.
//! - `modules.softdep`: `softdep MOD pre: a b post: c`. Several lines for
//!   one module are merged (depmod writes one line per `MODULE_SOFTDEP`).
//!   Names before any `pre:`/`post:` are ignored, as kmod does (cifs
//!   ships such lines). Softdeps are "soft": every module reached through
//!   one is optional, since e.g. `crc32c_intel` fails without SSE4.2 while
//!   `crc32c_generic` works.
//! - `modules.alias`: `alias NAME MODULE`; one name may have several
//!   targets. Only exact names are resolved; wildcard patterns (device
//!   aliases for udev) are kept only to be written back by `subset_files`.
//! - `modules.builtin`: paths of modules built into the kernel; loading one
//!   is a no-op.
//!
//! A name is resolved like kmod's lookup: a module name first, then a
//! built-in module, then an alias. Module names compare with `-` read as
//! `_` (`dm-verity.ko` is module `dm_verity`); so do alias names.

use std::collections::{HashMap, HashSet};

/// depmod's text files, as read from `/lib/modules/KVER`.
#[derive(Debug, Clone, Copy)]
pub struct ModuleFiles<'a> {
    pub dep: &'a str,
    pub softdep: &'a str,
    pub alias: &'a str,
    pub builtin: &'a str,
}

/// One module to load, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadStep {
    /// Normalised module name (`dm_verity`).
    pub name: String,
    /// Path relative to `/lib/modules/KVER`, as in `modules.dep`.
    pub path: String,
    /// Reached only through a softdep: a failure to load it is logged,
    /// not fatal.
    pub optional: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("unknown kernel module \"{0}\"")]
    Unknown(String),
    #[error("modules.dep line {line}: {message}")]
    Parse { line: usize, message: String },
}

/// Everything depmod knows about one kernel's modules.
#[derive(Debug, Clone, Default)]
pub struct ModuleIndex {
    /// In `modules.dep` order; `deps` index into this.
    modules: Vec<Module>,
    by_name: HashMap<String, usize>,
    /// In order of first appearance in `modules.softdep`.
    softdeps: Vec<SoftDep>,
    softdep_by_module: HashMap<String, usize>,
    /// Every alias line, in file order.
    aliases: Vec<Alias>,
    /// Exact alias name (normalised) → target module names, in file order.
    exact_aliases: HashMap<String, Vec<String>>,
    /// `modules.builtin` lines, in file order.
    builtin_paths: Vec<String>,
    builtin: HashSet<String>,
}

#[derive(Debug, Clone)]
struct Module {
    name: String,
    path: String,
    /// As listed in `modules.dep` (load in reverse).
    deps: Vec<usize>,
}

#[derive(Debug, Clone)]
struct SoftDep {
    module: String,
    /// Names as written (module names or aliases), resolved when loading.
    pre: Vec<String>,
    post: Vec<String>,
}

#[derive(Debug, Clone)]
struct Alias {
    name: String,
    target: String,
}

/// File name endings of kernel modules, compressed or not.
const MODULE_SUFFIXES: &[&str] = &[".ko", ".ko.xz", ".ko.zst", ".ko.gz"];

/// What a name stands for.
enum Resolved {
    Modules(Vec<usize>),
    Builtin,
    Nothing,
}

impl ModuleIndex {
    /// Reads depmod's files. Only `modules.dep` can fail: it is what the
    /// load order rests on. Unreadable lines elsewhere are skipped, as
    /// modprobe does.
    pub fn parse(files: &ModuleFiles) -> Result<ModuleIndex, ModuleError> {
        let mut index = ModuleIndex::default();
        index.parse_dep(files.dep)?;
        index.parse_softdep(files.softdep);
        index.parse_alias(files.alias);
        index.parse_builtin(files.builtin);
        Ok(index)
    }

    /// The module name for a name or a path: directory and `.ko[.xz|.zst|.gz]`
    /// removed, `-` turned into `_` (`kernel/drivers/md/dm-verity.ko.xz` and
    /// `dm-verity` both give `dm_verity`).
    pub fn normalize(name: &str) -> String {
        let base = name.rsplit('/').next().unwrap_or(name);
        let base = MODULE_SUFFIXES
            .iter()
            .find_map(|suffix| base.strip_suffix(suffix))
            .unwrap_or(base);
        base.replace('-', "_")
    }

    /// Whether `name` (a module name or path) is built into the kernel.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&ModuleIndex::normalize(name))
    }

    /// Load order for the requested modules: for each name, its softdep
    /// `pre:` modules, its hard dependencies deepest-first (each with its own
    /// softdeps), the module itself, then its `post:` modules. A module
    /// appears once, at its first position; it is optional only if every
    /// way to it goes through a softdep. A requested alias with several
    /// targets loads all of them as optional, since any one may fail on
    /// this hardware. Built-in names give no step. Every name is checked
    /// before the first unknown one is returned.
    pub fn load_order(&self, names: &[&str]) -> Result<Vec<LoadStep>, ModuleError> {
        let mut requests = Vec::with_capacity(names.len());
        let mut first_unknown = None;
        for &name in names {
            match self.resolve(name) {
                Resolved::Modules(found) => requests.push(found),
                Resolved::Builtin => {}
                Resolved::Nothing => {
                    first_unknown.get_or_insert_with(|| name.to_owned());
                }
            }
        }
        if let Some(name) = first_unknown {
            return Err(ModuleError::Unknown(name));
        }
        let mut plan = Plan::default();
        for found in requests {
            let optional = found.len() > 1;
            for module in found {
                self.visit(module, optional, &mut plan);
            }
        }
        Ok(plan.steps)
    }

    fn resolve(&self, name: &str) -> Resolved {
        let module = ModuleIndex::normalize(name);
        if let Some(&i) = self.by_name.get(&module) {
            return Resolved::Modules(vec![i]);
        }
        if self.builtin.contains(&module) {
            return Resolved::Builtin;
        }
        let Some(targets) = self.exact_aliases.get(&alias_key(name)) else {
            return Resolved::Nothing;
        };
        let found: Vec<usize> = targets
            .iter()
            .filter_map(|t| self.by_name.get(t).copied())
            .collect();
        if !found.is_empty() {
            Resolved::Modules(found)
        } else if targets.iter().any(|t| self.builtin.contains(t)) {
            Resolved::Builtin
        } else {
            Resolved::Nothing
        }
    }

    /// Depth-first placement of `module` and everything it needs.
    fn visit(&self, module: usize, optional: bool, plan: &mut Plan) {
        if let Some(&at) = plan.placed.get(&module) {
            if !optional && plan.steps[at].optional {
                // Now required: so is everything it hard-depends on. Each
                // module turns required at most once, which bounds this.
                plan.steps[at].optional = false;
                for &dep in &self.modules[module].deps {
                    self.visit(dep, false, plan);
                }
            }
            return;
        }
        // A softdep cycle (a pre: b, b post: a) would otherwise recurse
        // forever; the inner visit simply gives up.
        if !plan.visiting.insert(module) {
            return;
        }
        let softdep = self
            .softdep_by_module
            .get(&self.modules[module].name)
            .map(|&i| &self.softdeps[i]);
        if let Some(sd) = softdep {
            self.visit_soft(&sd.pre, plan);
        }
        for &dep in self.modules[module].deps.iter().rev() {
            self.visit(dep, optional, plan);
        }
        plan.placed.insert(module, plan.steps.len());
        plan.steps.push(LoadStep {
            name: self.modules[module].name.clone(),
            path: self.modules[module].path.clone(),
            optional,
        });
        if let Some(sd) = softdep {
            self.visit_soft(&sd.post, plan);
        }
        plan.visiting.remove(&module);
    }

    /// Softdep names that resolve to nothing or to built-ins are skipped:
    /// the module works without them.
    fn visit_soft(&self, names: &[String], plan: &mut Plan) {
        for name in names {
            if let Resolved::Modules(found) = self.resolve(name) {
                for module in found {
                    self.visit(module, true, plan);
                }
            }
        }
    }
}

/// Load order being built by `ModuleIndex::visit`.
#[derive(Debug, Default)]
struct Plan {
    steps: Vec<LoadStep>,
    /// module index → position in `steps`
    placed: HashMap<usize, usize>,
    visiting: HashSet<usize>,
}

/// Alias names compare with `-` read as `_`, like kmod's
/// `alias_normalize` (which also spares `[...]` groups; those are wildcard
/// patterns, which we never look up).
fn alias_key(name: &str) -> String {
    name.replace('-', "_")
}

mod parse;
mod subset;
#[cfg(test)]
mod tests;
