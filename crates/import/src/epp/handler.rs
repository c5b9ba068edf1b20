//! The profile handler (single profile, or P/D: decode profile first, then prefill when the decider
//! says so) and the deciders, with the semantics of each EPP generation:
//! * `pd-profile-handler` (scheduler v0.2 to v0.5): `threshold` is the non-cached prompt length in
//!   **characters** below which decode serves the request alone; 0 always disaggregates. From v0.6 it
//!   takes a `deciderPluginName` instead (and newer routers refuse `threshold`).
//! * `disagg-profile-handler` (v0.7+): `deciders.prefill` (or the flat `deciderPluginName`).
//! * `prefix-based-pd-decider`: disaggregates when at least `nonCachedTokens` prompt tokens are not
//!   cached on the chosen decode endpoint; `nonCachedTokens: 0` (its default) disables P/D.
//! * `always-disagg-pd-decider`: always.

use super::params::{num, text};
use super::Plugins;
use blis_sim::error::InvalidInput;
use blis_sim::sim::router::{Decider, Handler, Profile};

/// Characters per token a character threshold is converted with.
const CHARS_PER_TOKEN: f64 = 4.0;

/// The decider plugin `name` names (the handler at `at` references it).
fn decider(plugins: &Plugins, name: &str, at: &str) -> Result<Decider, InvalidInput> {
    let Some(d) = plugins.by_name.get(name) else {
        return Err(InvalidInput::new(
            at,
            format!("profile handler references decider {name:?}, which is not defined under plugins"),
            format!("define a plugin named {name:?} (e.g. type prefix-based-pd-decider)"),
        ));
    };
    Ok(match d.ty.as_str() {
        "always-disagg-pd-decider" => Decider::Always,
        "prefix-based-pd-decider" => {
            let tokens = num(&d.params, "nonCachedTokens").unwrap_or(0.0);
            let prompt = num(&d.params, "promptTokens").unwrap_or(0.0);
            if tokens < 0.0 || prompt < 0.0 {
                return Err(InvalidInput::new(
                    format!("plugins[{}].parameters", d.index),
                    "nonCachedTokens and promptTokens of the prefix disaggregation decider cannot be negative",
                    "use 0 or a positive token count",
                ));
            }
            if tokens == 0.0 {
                Decider::Never
            } else {
                Decider::PrefixBased { non_cached_tokens: tokens as u32, prompt_tokens: prompt as u32 }
            }
        }
        other => {
            return Err(InvalidInput::new(
                at,
                format!("{name:?} is a {other}, not a P/D decider"),
                "name an always-disagg-pd-decider or prefix-based-pd-decider plugin",
            ))
        }
    })
}

/// The P/D handler over the profiles named `decode` and `prefill`.
fn disagg(
    profiles: &[Profile],
    handler: &str,
    at: &str,
    decode: &str,
    prefill: &str,
    d: Decider,
) -> Result<Handler, InvalidInput> {
    let find = |n: &str| {
        profiles.iter().position(|p| p.name == n).ok_or_else(|| {
            InvalidInput::new(
                at,
                format!("profile handler {handler:?} needs a scheduling profile named {n:?}"),
                "add decode and prefill scheduling profiles or name them in the handler's parameters",
            )
        })
    };
    Ok(Handler::Disagg { decode: find(decode)?, prefill: find(prefill)?, decider: d })
}

/// The handler of the config: at most one profile handler, as the EPP requires.
pub(super) fn handler(
    plugins: &Plugins,
    profiles: &[Profile],
    warnings: &mut Vec<String>,
) -> Result<Handler, InvalidInput> {
    let handlers: Vec<&str> = plugins
        .order
        .iter()
        .filter(|n| plugins.by_name[*n].entry.is_some_and(|e| e.role == super::catalogue::Role::Handler))
        .map(String::as_str)
        .collect();
    if handlers.len() > 1 {
        let i = plugins.by_name[handlers[1]].index;
        return Err(InvalidInput::new(
            format!("plugins[{i}].type"),
            format!(
                "multiple profile handlers found ('{}', '{}'); only one is allowed",
                handlers[0], handlers[1]
            ),
            "keep one profile handler (the EPP refuses to start otherwise)",
        ));
    }
    let mut handler = Handler::Single;
    if let Some(name) = handlers.first() {
        let p = &plugins.by_name[*name];
        let q = &p.params;
        let at = format!("plugins[{}].parameters", p.index);
        match p.ty.as_str() {
            "pd-profile-handler" => {
                let d = match (text(q, "deciderPluginName"), num(q, "threshold")) {
                    (Some(d), _) => decider(plugins, d, &at)?,
                    (None, Some(t)) if t > 0.0 => {
                        let tokens = ((t / CHARS_PER_TOKEN).round() as u32).max(1);
                        warnings.push(format!(
                            "pd-profile-handler threshold {t} counts prompt characters (scheduler v0.2 to v0.5); read as {tokens} non-cached tokens at {CHARS_PER_TOKEN} characters per token"
                        ));
                        Decider::PrefixBased { non_cached_tokens: tokens, prompt_tokens: 0 }
                    }
                    (None, Some(_)) => Decider::Always,
                    (None, None) => {
                        warnings.push(
                            "pd-profile-handler without threshold or deciderPluginName: read as always disaggregating (scheduler v0.2 to v0.5); routers from v0.6 default to the prefix-based decider, which without nonCachedTokens never disaggregates".into(),
                        );
                        Decider::Always
                    }
                };
                handler = disagg(
                    profiles,
                    name,
                    &at,
                    text(q, "decodeProfile").unwrap_or("decode"),
                    text(q, "prefillProfile").unwrap_or("prefill"),
                    d,
                )?;
            }
            "disagg-profile-handler" => {
                let dname = q
                    .pointer("/deciders/prefill")
                    .and_then(serde_json::Value::as_str)
                    .or_else(|| text(q, "deciderPluginName"))
                    .or_else(|| text(q, "prefillDeciderPluginName"));
                let d = match dname {
                    Some(d) => decider(plugins, d, &at)?,
                    None => {
                        warnings.push(format!(
                            "disagg-profile-handler {name:?} names no prefill decider: the decode profile serves whole requests"
                        ));
                        Decider::Never
                    }
                };
                let profs = q.get("profiles");
                let pick = |k: &str, flat: &str| {
                    profs
                        .and_then(|x| x.get(k))
                        .and_then(serde_json::Value::as_str)
                        .or_else(|| text(q, flat))
                        .unwrap_or(k)
                        .to_string()
                };
                handler = disagg(
                    profiles,
                    name,
                    &at,
                    &pick("decode", "decodeProfile"),
                    &pick("prefill", "prefillProfile"),
                    d,
                )?;
            }
            _ => {}
        }
    }
    if handler == Handler::Single && profiles.len() > 1 {
        warnings.push(format!(
            "endpoint picker config has {} scheduling profiles but no P/D profile handler; only {:?} is used",
            profiles.len(),
            profiles[0].name
        ));
    }
    Ok(handler)
}
