//! `vireo new`: writes a new function project from one of the templates embedded in the binary
//! (the repository's `templates/<language>/`), with the function's name filled in.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use include_dir::{Dir, DirEntry, include_dir};
use serde::Deserialize;
use serde_json::json;
use vireo_core::Name;

use crate::args;
use crate::output::{self, Format};

static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../templates");

/// Each template's description for `--list`; not written into projects.
const METADATA: &str = "template.toml";

/// Replaced by the function's name in every text file; nothing else is substituted.
const NAME_PLACEHOLDER: &str = "{{name}}";

#[derive(Args)]
pub struct NewArgs {
    /// The template's language: rust, python or js (`vireo new --list` says what each needs)
    #[arg(required_unless_present = "list")]
    language: Option<String>,

    /// The function's name, written into vireo.toml (and the package's name)
    #[arg(required_unless_present = "list", value_parser = args::function_name)]
    name: Option<Name>,

    /// The directory to write the project into; it must not exist or be empty [default: ./NAME]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,

    /// List the templates and the toolchain each one's build needs
    #[arg(long, conflicts_with_all = ["language", "name", "dir"])]
    list: bool,
}

/// `templates/<language>/template.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    summary: String,
    toolchain: String,
    next_steps: Vec<String>,
}

struct Template {
    language: &'static str,
    metadata: Metadata,
    files: &'static Dir<'static>,
}

pub fn run(format: Format, args: NewArgs) -> anyhow::Result<()> {
    let templates = templates()?;
    if args.list {
        return list(format, &templates);
    }
    let (Some(language), Some(name)) = (args.language, args.name) else {
        unreachable!("clap requires a language and a name without --list")
    };
    let Some(template) = templates.iter().find(|t| t.language == language) else {
        let known: Vec<&str> = templates.iter().map(|t| t.language).collect();
        bail!(
            "there is no template for {language:?}; choose one of {} (`vireo new --list`)",
            known.join(", ")
        );
    };
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(name.as_str()));
    let written = write_project(template, name.as_str(), &dir)?;
    let next_steps: Vec<String> = std::iter::once(format!("cd {}", dir.display()))
        .chain(template.metadata.next_steps.iter().cloned())
        .collect();
    let text = match format {
        Format::Json => output::pretty_json(&json!({
            "language": template.language,
            "name": name.as_str(),
            "dir": dir,
            "files": written,
            "next_steps": next_steps,
        })),
        Format::Table => format!(
            "created {name} ({}) in {}: {}\nneeds {}\nnext steps:\n  {}\n",
            template.language,
            dir.display(),
            written.join(", "),
            template.metadata.toolchain,
            next_steps.join("\n  ")
        ),
        Format::Csv => return Err(output::csv_unsupported()),
    };
    output::write_stdout(text.as_bytes())
}

fn list(format: Format, templates: &[Template]) -> anyhow::Result<()> {
    let text = match format {
        Format::Json => output::pretty_json(&json!({
            "templates": templates.iter().map(|t| json!({
                "language": t.language,
                "summary": t.metadata.summary,
                "toolchain": t.metadata.toolchain,
            })).collect::<Vec<_>>(),
        })),
        Format::Table => output::table(
            ["LANGUAGE", "TEMPLATE", "NEEDS"],
            templates.iter().map(|t| {
                [
                    t.language.to_string(),
                    t.metadata.summary.clone(),
                    t.metadata.toolchain.clone(),
                ]
            }),
        ),
        Format::Csv => return Err(output::csv_unsupported()),
    };
    output::write_stdout(text.as_bytes())
}

/// The embedded templates, sorted by language.
fn templates() -> anyhow::Result<Vec<Template>> {
    let mut templates = TEMPLATES
        .dirs()
        .map(|files| {
            let language = files
                .path()
                .to_str()
                .context("a template's directory name is not UTF-8")?;
            let metadata = files
                .get_file(files.path().join(METADATA))
                .and_then(|file| file.contents_utf8())
                .with_context(|| format!("the {language} template has no {METADATA}"))?;
            let metadata = toml::from_str(metadata)
                .with_context(|| format!("the {language} template's {METADATA}"))?;
            Ok(Template {
                language,
                metadata,
                files,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    templates.sort_by_key(|t| t.language);
    Ok(templates)
}

/// Writes the template's files under `dir` (created if missing, refused unless empty) with the
/// name filled in; returns their paths relative to `dir`, sorted.
fn write_project(template: &Template, name: &str, dir: &Path) -> anyhow::Result<Vec<String>> {
    refuse_unless_empty(dir)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for file in files(template.files) {
        let relative = file
            .path()
            .strip_prefix(template.files.path())
            .expect("a template's files are under its directory");
        if relative == Path::new(METADATA) {
            continue;
        }
        let target = dir.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let contents = match file.contents_utf8() {
            Some(text) => text.replace(NAME_PLACEHOLDER, name).into_bytes(),
            None => file.contents().to_vec(),
        };
        // `create_new`: a file that appeared since the check is never overwritten.
        std::fs::File::create_new(&target)
            .and_then(|mut out| out.write_all(&contents))
            .with_context(|| format!("writing {}", target.display()))?;
        written.push(relative.display().to_string());
    }
    written.sort();
    Ok(written)
}

fn refuse_unless_empty(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty: `vireo new` writes only into a new or empty directory, so \
                     nothing there is overwritten; choose another with --dir",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("reading {}", dir.display())),
    }
}

/// Every file under `dir`, at any depth.
fn files(dir: &'static Dir<'static>) -> Vec<&'static include_dir::File<'static>> {
    dir.entries()
        .iter()
        .flat_map(|entry| match entry {
            DirEntry::Dir(sub) => files(sub),
            DirEntry::File(file) => vec![file],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_describes_itself_and_names_its_function() {
        let templates = templates().unwrap();
        let languages: Vec<&str> = templates.iter().map(|t| t.language).collect();
        assert_eq!(languages, ["js", "python", "rust"]);
        for template in &templates {
            let manifest = template
                .files
                .get_file(template.files.path().join("vireo.toml"))
                .and_then(|file| file.contents_utf8())
                .unwrap_or_else(|| panic!("{} has no vireo.toml", template.language));
            assert!(
                manifest.starts_with("name = \"{{name}}\"\n"),
                "{}: {manifest}",
                template.language
            );
        }
    }

    #[test]
    fn a_project_gets_the_name_and_not_the_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let templates = templates().unwrap();
        let rust = templates.iter().find(|t| t.language == "rust").unwrap();
        let project = dir.path().join("greet");
        let written = write_project(rust, "greet", &project).unwrap();
        assert!(written.contains(&"src/lib.rs".to_string()), "{written:?}");
        assert!(!written.contains(&METADATA.to_string()), "{written:?}");
        let cargo = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"greet\""), "{cargo}");
        assert!(!cargo.contains(NAME_PLACEHOLDER), "{cargo}");
    }

    #[test]
    fn an_empty_directory_is_used_and_a_full_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let templates = templates().unwrap();
        let js = templates.iter().find(|t| t.language == "js").unwrap();
        write_project(js, "greet", dir.path()).unwrap();
        let again = write_project(js, "greet", dir.path()).unwrap_err();
        assert!(again.to_string().contains("is not empty"), "{again}");
    }
}
