//! Splitting an alias's traffic between two versions by weight, optionally sticky by a header
//! or cookie, from the function page: the form posts what `PUT …/aliases/{alias}` takes, and the
//! admin API's handler sets it.

use std::sync::Arc;

use axum::extract::{Form, State};
use axum::response::Redirect;
use maud::{Markup, html};
use serde::Deserialize;
use vireo_core::{
    Action, Catalog, Deployer, FunctionInfo, StickyKey, VersionInfo, WeightedVersion,
};

use super::error::UiError;
use super::functions::function_url;
use super::session::Viewer;
use crate::api::aliases::{SetAlias, set};
use crate::auth::authorize;
use crate::error::ApiError;
use crate::extract::{AliasPath, ApiJson, FunctionPath};

/// What an alias points at, in words: `v2`, or `v1 90% · v2 10%, sticky by header x-user`.
pub(crate) fn describe(info: &FunctionInfo, alias: &str, version: u32) -> String {
    let Some(target) = info.splits.get(alias) else {
        return format!("v{version}");
    };
    let arms: Vec<String> = target
        .versions
        .iter()
        .map(|arm| format!("v{} {}%", arm.version, arm.weight))
        .collect();
    match &target.sticky {
        None => arms.join(" · "),
        Some(StickyKey::Header(name)) => format!("{}, sticky by header {name}", arms.join(" · ")),
        Some(StickyKey::Cookie(name)) => format!("{}, sticky by cookie {name}", arms.join(" · ")),
    }
}

/// The form splitting one of the function's aliases (all but `latest`) between two versions.
pub(crate) fn form(viewer: &Viewer, info: &FunctionInfo, versions: &[VersionInfo]) -> Markup {
    let here = function_url(&info.namespace, &info.name);
    let aliases: Vec<&String> = info.aliases.keys().filter(|a| *a != "latest").collect();
    let pick = |name: &str, label: &str, chosen: Option<u32>| {
        html! {
            label { (label) " " select name=(name) {
                @for v in versions {
                    option value=(v.version) selected[Some(v.version) == chosen] { "v" (v.version) }
                }
            } }
        }
    };
    html! {
        h3 { "Split an alias's traffic" }
        @if aliases.is_empty() || versions.len() < 2 {
            p.hint {
                "Splitting needs an alias besides " code { "latest" } " and two versions: "
                code { "vireo alias " (info.name) " canary 1" } " makes one."
            }
        } @else {
            form.filters #split method="post" action={ (here) "/split" } {
                (viewer.csrf.field())
                label { "Alias " select name="alias" {
                    @for alias in &aliases { option value=(alias) { (alias) } }
                } }
                (pick("version", "Version", versions.last().map(|v| v.version)))
                (pick("other", "and", versions.first().map(|v| v.version)))
                label { "gets " input type="number" name="other_weight" min="1" max="99" value="10" size="3" required; " %" }
                label { "Sticky by " select name="sticky" {
                    option value="" { "nothing" }
                    option value="header" { "header" }
                    option value="cookie" { "cookie" }
                } }
                label { "named " input type="text" name="sticky_name" size="10" placeholder="x-user-id"; }
                button type="submit" { "Split" }
            }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct SplitForm {
    alias: String,
    version: u32,
    other: u32,
    other_weight: u8,
    #[serde(default)]
    sticky: String,
    #[serde(default)]
    sticky_name: String,
}

impl SplitForm {
    fn request(self) -> Result<SetAlias, ApiError> {
        let sticky = match self.sticky.as_str() {
            "" => None,
            "header" => Some(StickyKey::Header(self.sticky_name.trim().to_string())),
            "cookie" => Some(StickyKey::Cookie(self.sticky_name.trim().to_string())),
            other => {
                return Err(ApiError::bad_request(format!(
                    "sticky must be header, cookie or nothing, not {other:?}"
                )));
            }
        };
        if self.version == self.other || !(1..=99).contains(&self.other_weight) {
            return Err(ApiError::bad_request(
                "split between two different versions, the second getting 1 to 99 %",
            ));
        }
        let arms = vec![
            WeightedVersion {
                version: self.version,
                weight: 100 - self.other_weight,
            },
            WeightedVersion {
                version: self.other,
                weight: self.other_weight,
            },
        ];
        Ok(SetAlias {
            version: None,
            versions: Some(arms),
            sticky,
        })
    }
}

/// Splits the alias as `PUT …/aliases/{alias}` with `versions` (and `sticky`) would.
pub(crate) async fn split_alias(
    viewer: Viewer,
    State(catalog): State<Arc<dyn Catalog>>,
    State(deployer): State<Arc<dyn Deployer>>,
    FunctionPath {
        namespace,
        function,
    }: FunctionPath,
    Form(form): Form<SplitForm>,
) -> Result<Redirect, UiError> {
    authorize(&viewer.caller, Action::Write, &namespace)?;
    let back = function_url(&namespace, &function);
    let alias = AliasPath::new(namespace, function, &form.alias)?;
    // The answer is the function, which the page it returns to shows.
    let _function = set(
        State(catalog),
        State(deployer),
        alias,
        ApiJson(form.request()?),
    )
    .await?;
    Ok(Redirect::to(&back))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(version: u32, other: u32, other_weight: u8, sticky: &str) -> SplitForm {
        SplitForm {
            alias: "canary".into(),
            version,
            other,
            other_weight,
            sticky: sticky.into(),
            sticky_name: " x-user ".into(),
        }
    }

    #[test]
    fn the_form_becomes_the_alias_api_request() {
        let request = form(1, 2, 10, "header").request().unwrap();
        assert_eq!(request.version, None);
        let arms: Vec<_> = request
            .versions
            .unwrap()
            .iter()
            .map(|arm| (arm.version, arm.weight))
            .collect();
        assert_eq!(arms, [(1, 90), (2, 10)]);
        assert_eq!(request.sticky, Some(StickyKey::Header("x-user".into())));
        assert_eq!(form(1, 2, 50, "").request().unwrap().sticky, None);
        for refused in [
            form(2, 2, 50, ""),
            form(1, 2, 0, ""),
            form(1, 2, 100, ""),
            form(1, 2, 50, "query"),
        ] {
            assert!(refused.request().is_err());
        }
    }
}
