//! Reading depmod's text files into a [`ModuleIndex`].

use super::{alias_key, Alias, Module, ModuleError, ModuleIndex, SoftDep, MODULE_SUFFIXES};

impl ModuleIndex {
    pub(super) fn parse_builtin(&mut self, text: &str) {
        for path in content_lines(text) {
            self.builtin.insert(ModuleIndex::normalize(path));
            self.builtin_paths.push(path.to_owned());
        }
    }

    pub(super) fn parse_dep(&mut self, text: &str) -> Result<(), ModuleError> {
        let parse_error = |line: usize, message: String| ModuleError::Parse { line, message };
        // (module index, dependency paths, line) until every line is known,
        // so a dependency may be listed before or after its own line.
        let mut pending = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line_no = n + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((path, deps)) = line.split_once(':') else {
                return Err(parse_error(
                    line_no,
                    format!("expected \"path.ko: dependencies\", found \"{line}\""),
                ));
            };
            let path = path.trim();
            check_module_path(path).map_err(|m| parse_error(line_no, m))?;
            let name = ModuleIndex::normalize(path);
            if self.by_name.contains_key(&name) {
                return Err(parse_error(line_no, format!("module {name} listed twice")));
            }
            self.by_name.insert(name.clone(), self.modules.len());
            self.modules.push(Module {
                name,
                path: path.to_owned(),
                deps: Vec::new(),
            });
            pending.push((self.modules.len() - 1, deps, line_no));
        }
        for (module, deps, line_no) in pending {
            for dep_path in deps.split_whitespace() {
                check_module_path(dep_path).map_err(|m| parse_error(line_no, m))?;
                // A dependency without its own line has no dependencies
                // we know of; keep it so it is still loaded.
                let dep = self.module_for_path(dep_path);
                self.modules[module].deps.push(dep);
            }
        }
        Ok(())
    }

    fn module_for_path(&mut self, path: &str) -> usize {
        let name = ModuleIndex::normalize(path);
        if let Some(&i) = self.by_name.get(&name) {
            return i;
        }
        self.by_name.insert(name.clone(), self.modules.len());
        self.modules.push(Module {
            name,
            path: path.to_owned(),
            deps: Vec::new(),
        });
        self.modules.len() - 1
    }

    /// Lines that are not `softdep MOD ...` are ignored, like modprobe does
    /// with lines it cannot read.
    pub(super) fn parse_softdep(&mut self, text: &str) {
        for line in content_lines(text) {
            let mut words = line.split_whitespace();
            let (Some("softdep"), Some(module)) = (words.next(), words.next()) else {
                continue;
            };
            let module = ModuleIndex::normalize(module);
            let i = *self
                .softdep_by_module
                .entry(module.clone())
                .or_insert_with(|| {
                    self.softdeps.push(SoftDep {
                        module,
                        pre: Vec::new(),
                        post: Vec::new(),
                    });
                    self.softdeps.len() - 1
                });
            let entry = &mut self.softdeps[i];
            let mut list: Option<&mut Vec<String>> = None;
            for word in words {
                match word {
                    "pre:" => list = Some(&mut entry.pre),
                    "post:" => list = Some(&mut entry.post),
                    name => {
                        if let Some(list) = list.as_mut() {
                            list.push(name.to_owned());
                        }
                    }
                }
            }
        }
    }

    /// Lines that are not `alias NAME MODULE` are ignored.
    pub(super) fn parse_alias(&mut self, text: &str) {
        for line in content_lines(text) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let ["alias", name, target] = words[..] else {
                continue;
            };
            let target = ModuleIndex::normalize(target);
            if !name.contains(['*', '?', '[']) {
                self.exact_aliases
                    .entry(alias_key(name))
                    .or_default()
                    .push(target.clone());
            }
            self.aliases.push(Alias {
                name: name.to_owned(),
                target,
            });
        }
    }
}

fn check_module_path(path: &str) -> Result<(), String> {
    if MODULE_SUFFIXES.iter().any(|s| path.ends_with(s)) && !ModuleIndex::normalize(path).is_empty()
    {
        Ok(())
    } else {
        Err(format!(
            "\"{path}\" is not a module file (expected a name ending in {})",
            MODULE_SUFFIXES.join(", ")
        ))
    }
}

/// Non-empty lines that are not `#` comments, trimmed.
fn content_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}
