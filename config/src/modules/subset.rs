//! Writing a [`ModuleIndex`] back out, restricted to the modules an image
//! carries.

use std::collections::HashSet;

use super::{LoadStep, ModuleIndex, Resolved};

impl ModuleIndex {
    /// `modules.dep`, `modules.softdep`, `modules.alias` and
    /// `modules.builtin` texts describing only the modules in `steps`, for
    /// an image that carries just those. Softdep names and alias lines that
    /// lead to none of them are dropped. `modules.builtin` is written whole:
    /// it is small, and without it a request for a built-in module would
    /// look unknown.
    pub fn subset_files(&self, steps: &[LoadStep]) -> (String, String, String, String) {
        let keep: HashSet<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        let mut dep = String::new();
        for module in self
            .modules
            .iter()
            .filter(|m| keep.contains(m.name.as_str()))
        {
            dep.push_str(&module.path);
            dep.push(':');
            for &d in &module.deps {
                dep.push(' ');
                dep.push_str(&self.modules[d].path);
            }
            dep.push('\n');
        }
        let leads_to_kept = |name: &String| match self.resolve(name) {
            Resolved::Modules(found) => found
                .iter()
                .any(|&i| keep.contains(self.modules[i].name.as_str())),
            Resolved::Builtin => true,
            Resolved::Nothing => false,
        };
        let mut softdep = String::new();
        for sd in self
            .softdeps
            .iter()
            .filter(|sd| keep.contains(sd.module.as_str()))
        {
            let pre: Vec<&str> = sd
                .pre
                .iter()
                .filter(|n| leads_to_kept(n))
                .map(String::as_str)
                .collect();
            let post: Vec<&str> = sd
                .post
                .iter()
                .filter(|n| leads_to_kept(n))
                .map(String::as_str)
                .collect();
            if pre.is_empty() && post.is_empty() {
                continue;
            }
            softdep.push_str("softdep ");
            softdep.push_str(&sd.module);
            for (label, names) in [("pre:", pre), ("post:", post)] {
                if !names.is_empty() {
                    softdep.push(' ');
                    softdep.push_str(label);
                    for name in names {
                        softdep.push(' ');
                        softdep.push_str(name);
                    }
                }
            }
            softdep.push('\n');
        }
        let mut alias = String::new();
        for a in self
            .aliases
            .iter()
            .filter(|a| keep.contains(a.target.as_str()))
        {
            alias.push_str(&format!("alias {} {}\n", a.name, a.target));
        }
        let builtin: String = self
            .builtin_paths
            .iter()
            .map(|p| format!("{p}\n"))
            .collect();
        (dep, softdep, alias, builtin)
    }
}
