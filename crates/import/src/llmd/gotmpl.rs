//! The subset of Go templates (with the helmfile / Sprig functions the llm-d guides use) needed to
//! render a `helmfile.yaml.gotmpl`: text, `{{ }}` actions with `{{-`/`-}}` trimming, comments,
//! `if`/`else if`/`else`/`end`, `with`, `range` over lists, `$var := pipeline`, pipelines with `|`,
//! parentheses, fields (`.Environment.Name`, `.Environment.Values.x`, `.Namespace`, `$v.x`), and the
//! functions `eq ne lt gt le ge and or not default empty env requiredEnv printf print quote squote
//! toYaml nindent indent int trim lower upper trimSuffix trimPrefix hasKey get list`. Anything else is
//! an error naming the file, line and what is not supported, so a helmfile is never half-read.

use serde_json::{Map, Value};

use blis_sim::error::InvalidInput;

/// A parsed template node.
#[derive(Debug, Clone)]
enum Node {
    Text(String),
    /// An action that prints its pipeline.
    Print(Expr, usize),
    /// `$name := pipeline` (prints nothing).
    Assign(String, Expr, usize),
    /// `if` / `else if` chains: (condition, body) pairs and the `else` body.
    If(Vec<(Expr, Vec<Node>)>, Vec<Node>),
    /// `with pipeline` body `else` body.
    With(Expr, Vec<Node>, Vec<Node>),
    /// `range pipeline` body.
    Range(Option<String>, Expr, Vec<Node>),
}

/// A pipeline: commands joined by `|`, each a list of arguments (the first a function name or a value).
#[derive(Debug, Clone)]
struct Expr(Vec<Vec<Arg>>);

#[derive(Debug, Clone)]
enum Arg {
    Str(String),
    Num(f64),
    Bool(bool),
    Field(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Paren(Expr),
}

/// Where an error happened: the file (for messages) and the line of the action.
struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, line: usize, problem: impl Into<String>) -> InvalidInput {
        InvalidInput::new(
            format!("{}:{line}", self.file),
            problem,
            "pass the rendered helmfile (helmfile template), or name its releases in spec.import.releases",
        )
    }
}

/// One `{{ ... }}` action with its trimmed neighbours, or a text chunk.
enum Tok {
    Text(String),
    Action(String, usize),
}

fn tokenize(src: &str, ctx: &Ctx) -> Result<Vec<Tok>, InvalidInput> {
    let mut out = Vec::new();
    let mut rest = src;
    let mut line = 1;
    while let Some(i) = rest.find("{{") {
        let mut text = rest[..i].to_string();
        let after = &rest[i + 2..];
        let trim_left = after.starts_with('-');
        let Some(j) = after.find("}}") else {
            return Err(ctx.err(line + text.matches('\n').count(), "an action {{ is not closed"));
        };
        let mut inner = &after[..j];
        let trim_right = inner.ends_with('-');
        if trim_left {
            inner = &inner[1..];
            text = text.trim_end().to_string();
        }
        if trim_right {
            inner = &inner[..inner.len() - 1];
        }
        line += rest[..i].matches('\n').count();
        out.push(Tok::Text(text));
        out.push(Tok::Action(inner.trim().to_string(), line));
        line += inner.matches('\n').count();
        rest = &after[j + 2..];
        if trim_right {
            let trimmed = rest.trim_start();
            line += rest[..rest.len() - trimmed.len()].matches('\n').count();
            rest = trimmed;
        }
    }
    out.push(Tok::Text(rest.to_string()));
    Ok(out)
}

fn lex_args(s: &str, line: usize, ctx: &Ctx) -> Result<Vec<String>, InvalidInput> {
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '`' {
            let start = i;
            i += 1;
            while i < cs.len() && cs[i] != c {
                if cs[i] == '\\' && c == '"' {
                    i += 1;
                }
                i += 1;
            }
            if i >= cs.len() {
                return Err(ctx.err(line, "a string is not closed"));
            }
            i += 1;
            out.push(cs[start..i].iter().collect());
        } else if c == '(' || c == ')' || c == '|' {
            out.push(c.to_string());
            i += 1;
        } else {
            let start = i;
            while i < cs.len() && !cs[i].is_whitespace() && !"()|".contains(cs[i]) {
                i += 1;
            }
            out.push(cs[start..i].iter().collect());
        }
    }
    Ok(out)
}

fn parse_pipeline(words: &[String], line: usize, ctx: &Ctx) -> Result<Expr, InvalidInput> {
    let mut cmds = vec![Vec::new()];
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        i += 1;
        let arg = match w.as_str() {
            "|" => {
                cmds.push(Vec::new());
                continue;
            }
            "(" => {
                let start = i;
                let mut depth = 1;
                while i < words.len() && depth > 0 {
                    depth += match words[i].as_str() {
                        "(" => 1,
                        ")" => -1,
                        _ => 0,
                    };
                    i += 1;
                }
                if depth != 0 {
                    return Err(ctx.err(line, "a parenthesis is not closed"));
                }
                Arg::Paren(parse_pipeline(&words[start..i - 1], line, ctx)?)
            }
            ")" => return Err(ctx.err(line, "unbalanced )")),
            "true" => Arg::Bool(true),
            "false" => Arg::Bool(false),
            _ if w.starts_with('"') => Arg::Str(unquote(w)),
            _ if w.starts_with('`') => Arg::Str(w.trim_matches('`').to_string()),
            _ if w.starts_with('.') => {
                Arg::Field(w.split('.').skip(1).filter(|p| !p.is_empty()).map(str::to_string).collect())
            }
            _ if w.starts_with('$') => {
                let mut parts = w.split('.');
                let name = parts.next().unwrap_or("$").to_string();
                Arg::Var(name, parts.map(str::to_string).collect())
            }
            _ if w.parse::<f64>().is_ok() => Arg::Num(w.parse().unwrap_or(0.0)),
            _ => Arg::Ident(w.clone()),
        };
        cmds.last_mut().expect("one command at least").push(arg);
    }
    if cmds.iter().any(Vec::is_empty) {
        return Err(ctx.err(line, "an empty command in a pipeline"));
    }
    Ok(Expr(cmds))
}

fn unquote(w: &str) -> String {
    serde_json::from_str::<String>(w).unwrap_or_else(|_| w.trim_matches('"').to_string())
}

/// The keyword that stopped a parse (`end`, `else ...`) and its line.
type Stop = Option<(String, usize)>;

/// Parses the tokens from `*pos` until an `end`/`else` (returned) or the end of input.
fn parse_nodes(toks: &[Tok], pos: &mut usize, ctx: &Ctx) -> Result<(Vec<Node>, Stop), InvalidInput> {
    let mut nodes = Vec::new();
    while *pos < toks.len() {
        let t = &toks[*pos];
        *pos += 1;
        match t {
            Tok::Text(s) => nodes.push(Node::Text(s.clone())),
            Tok::Action(a, line) => {
                let line = *line;
                if a.starts_with("/*") {
                    continue;
                }
                let words = lex_args(a, line, ctx)?;
                let Some(first) = words.first() else { continue };
                match first.as_str() {
                    "end" | "else" => return Ok((nodes, Some((a.clone(), line)))),
                    "if" => {
                        let mut branches = vec![(parse_pipeline(&words[1..], line, ctx)?, Vec::new())];
                        let mut otherwise = Vec::new();
                        loop {
                            let (body, stop) = parse_nodes(toks, pos, ctx)?;
                            let Some((stop, sline)) = stop else {
                                return Err(ctx.err(line, "if without end"));
                            };
                            if otherwise.is_empty() && branches.last().is_some_and(|b| b.1.is_empty()) {
                                branches.last_mut().expect("a branch").1 = body;
                            } else {
                                otherwise = body;
                            }
                            let sw = lex_args(&stop, sline, ctx)?;
                            match (sw.first().map(String::as_str), sw.get(1).map(String::as_str)) {
                                (Some("end"), _) => break,
                                (Some("else"), Some("if")) => {
                                    branches.push((parse_pipeline(&sw[2..], sline, ctx)?, Vec::new()))
                                }
                                (Some("else"), None) => {
                                    let (body, stop) = parse_nodes(toks, pos, ctx)?;
                                    otherwise = body;
                                    if stop.is_none_or(|(s, _)| s != "end") {
                                        return Err(ctx.err(sline, "else without end"));
                                    }
                                    break;
                                }
                                _ => return Err(ctx.err(sline, format!("unsupported {stop:?}"))),
                            }
                        }
                        nodes.push(Node::If(branches, otherwise));
                    }
                    "with" | "range" => {
                        let (var, rest) = match (words.get(1), words.get(2)) {
                            (Some(v), Some(op)) if first == "range" && v.starts_with('$') && op == ":=" => {
                                (Some(v.clone()), &words[3..])
                            }
                            _ => (None, &words[1..]),
                        };
                        let e = parse_pipeline(rest, line, ctx)?;
                        let (body, stop) = parse_nodes(toks, pos, ctx)?;
                        let mut otherwise = Vec::new();
                        match stop.as_ref().map(|(s, _)| s.as_str()) {
                            Some("end") => {}
                            Some("else") => {
                                let (b, s2) = parse_nodes(toks, pos, ctx)?;
                                if s2.is_none_or(|(s, _)| s != "end") {
                                    return Err(ctx.err(line, format!("{first} without end")));
                                }
                                otherwise = b;
                            }
                            _ => return Err(ctx.err(line, format!("{first} without end"))),
                        }
                        nodes.push(if first == "with" {
                            Node::With(e, body, otherwise)
                        } else {
                            Node::Range(var, e, body)
                        });
                    }
                    "define" | "template" | "block" | "include" | "tpl" => {
                        return Err(ctx.err(line, format!("unsupported template action {first:?}")))
                    }
                    _ if words.len() > 2
                        && words[0].starts_with('$')
                        && (words[1] == ":=" || words[1] == "=") =>
                    {
                        nodes.push(Node::Assign(
                            words[0].clone(),
                            parse_pipeline(&words[2..], line, ctx)?,
                            line,
                        ));
                    }
                    _ => nodes.push(Node::Print(parse_pipeline(&words, line, ctx)?, line)),
                }
            }
        }
    }
    Ok((nodes, None))
}

/// What a template sees: `.` data and the variables.
struct Scope<'a> {
    dot: Value,
    vars: Vec<(String, Value)>,
    env: &'a dyn Fn(&str) -> Option<String>,
    read: &'a dyn Fn(&str) -> Option<String>,
    ctx: &'a Ctx<'a>,
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn to_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

fn path(v: &Value, parts: &[String]) -> Value {
    parts.iter().try_fold(v, |at, p| at.get(p)).cloned().unwrap_or(Value::Null)
}

impl Scope<'_> {
    fn arg(&mut self, a: &Arg, line: usize) -> Result<Value, InvalidInput> {
        Ok(match a {
            Arg::Str(s) => Value::String(s.clone()),
            Arg::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => Value::from(*n as i64),
            Arg::Num(n) => serde_json::Number::from_f64(*n).map(Value::Number).unwrap_or(Value::Null),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Field(p) => path(&self.dot, p),
            Arg::Var(name, p) => {
                let v = self.vars.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone());
                let Some(v) = v else { return Err(self.ctx.err(line, format!("undefined variable {name}"))) };
                path(&v, p)
            }
            Arg::Paren(e) => self.eval(e, line)?,
            Arg::Ident(f) => self.call(f, &[], None, line)?,
        })
    }

    fn eval(&mut self, e: &Expr, line: usize) -> Result<Value, InvalidInput> {
        let mut piped: Option<Value> = None;
        for cmd in &e.0 {
            let v = match &cmd[0] {
                Arg::Ident(f) => {
                    let args: Vec<Value> =
                        cmd[1..].iter().map(|a| self.arg(a, line)).collect::<Result<_, _>>()?;
                    self.call(f, &args, piped.take(), line)?
                }
                other if cmd.len() == 1 && piped.is_none() => self.arg(other, line)?,
                _ => return Err(self.ctx.err(line, "a value cannot take arguments")),
            };
            piped = Some(v);
        }
        Ok(piped.unwrap_or(Value::Null))
    }

    fn call(
        &mut self,
        f: &str,
        args: &[Value],
        piped: Option<Value>,
        line: usize,
    ) -> Result<Value, InvalidInput> {
        let mut a: Vec<Value> = args.to_vec();
        if let Some(p) = piped {
            a.push(p);
        }
        let s = |i: usize| a.get(i).map(to_text).unwrap_or_default();
        let n =
            |i: usize| a.get(i).and_then(|v| v.as_f64().or_else(|| to_text(v).parse().ok())).unwrap_or(0.0);
        Ok(match f {
            "eq" => Value::Bool(a.len() >= 2 && a[1..].iter().any(|x| to_text(x) == to_text(&a[0]))),
            "ne" => Value::Bool(a.len() >= 2 && to_text(&a[0]) != to_text(&a[1])),
            "lt" => Value::Bool(n(0) < n(1)),
            "gt" => Value::Bool(n(0) > n(1)),
            "le" => Value::Bool(n(0) <= n(1)),
            "ge" => Value::Bool(n(0) >= n(1)),
            "and" => a.iter().find(|x| !truthy(x)).or(a.last()).cloned().unwrap_or(Value::Bool(true)),
            "or" => a.iter().find(|x| truthy(x)).or(a.last()).cloned().unwrap_or(Value::Bool(false)),
            "not" => Value::Bool(!a.first().is_some_and(truthy)),
            "empty" => Value::Bool(!a.first().is_some_and(truthy)),
            "default" => {
                let given = a.get(1).cloned().unwrap_or(Value::Null);
                if truthy(&given) {
                    given
                } else {
                    a.first().cloned().unwrap_or(Value::Null)
                }
            }
            "env" => (self.env)(&s(0)).map(Value::String).unwrap_or(Value::String(String::new())),
            "requiredEnv" => match (self.env)(&s(0)) {
                Some(v) if !v.is_empty() => Value::String(v),
                _ => {
                    return Err(self
                        .ctx
                        .err(line, format!("requiredEnv {:?} is not set (helmfile would stop here)", s(0))))
                }
            },
            "printf" => Value::String(printf(&s(0), &a[1.min(a.len())..])),
            "print" => Value::String(a.iter().map(to_text).collect::<Vec<_>>().join("")),
            "quote" => {
                Value::String(serde_json::to_string(&s(a.len().saturating_sub(1))).unwrap_or_default())
            }
            "squote" => Value::String(format!("'{}'", s(a.len().saturating_sub(1)))),
            "toYaml" => Value::String(match a.last() {
                None | Some(Value::Null) => String::new(),
                Some(v) => serde_yaml::to_string(v).unwrap_or_default().trim_end().to_string(),
            }),
            "nindent" | "indent" => {
                let pad = " ".repeat(n(0).max(0.0) as usize);
                let body: String = s(1).lines().map(|l| format!("{pad}{l}")).collect::<Vec<_>>().join("\n");
                Value::String(if f == "nindent" { format!("\n{body}") } else { body })
            }
            "int" => Value::from(n(a.len().saturating_sub(1)) as i64),
            "trim" => Value::String(s(0).trim().to_string()),
            "lower" => Value::String(s(0).to_lowercase()),
            "upper" => Value::String(s(0).to_uppercase()),
            "trimSuffix" => {
                Value::String(s(1).strip_suffix(&s(0)).map(str::to_string).unwrap_or_else(|| s(1)))
            }
            "trimPrefix" => {
                Value::String(s(1).strip_prefix(&s(0)).map(str::to_string).unwrap_or_else(|| s(1)))
            }
            "hasKey" => {
                Value::Bool(a.first().and_then(Value::as_object).is_some_and(|m| m.contains_key(&s(1))))
            }
            "get" => a.first().and_then(|m| m.get(s(1))).cloned().unwrap_or(Value::String(String::new())),
            "list" => Value::Array(a.clone()),
            "readFile" => Value::String((self.read)(&s(0)).unwrap_or_default()),
            other => {
                return Err(self.ctx.err(line, format!("unsupported template function {other:?}")));
            }
        })
    }

    fn render(&mut self, nodes: &[Node], out: &mut String) -> Result<(), InvalidInput> {
        for n in nodes {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Print(e, line) => {
                    let v = self.eval(e, *line)?;
                    out.push_str(&to_text(&v));
                }
                Node::Assign(name, e, line) => {
                    let v = self.eval(e, *line)?;
                    self.vars.push((name.clone(), v));
                }
                Node::If(branches, otherwise) => {
                    let mut done = false;
                    for (cond, body) in branches {
                        if truthy(&self.eval(cond, 0)?) {
                            self.render(body, out)?;
                            done = true;
                            break;
                        }
                    }
                    if !done {
                        self.render(otherwise, out)?;
                    }
                }
                Node::With(e, body, otherwise) => {
                    let v = self.eval(e, 0)?;
                    if truthy(&v) {
                        let saved = std::mem::replace(&mut self.dot, v);
                        self.render(body, out)?;
                        self.dot = saved;
                    } else {
                        self.render(otherwise, out)?;
                    }
                }
                Node::Range(var, e, body) => {
                    let items: Vec<Value> = match self.eval(e, 0)? {
                        Value::Array(a) => a,
                        Value::Object(m) => m.into_values().collect(),
                        _ => Vec::new(),
                    };
                    for item in items {
                        let saved = std::mem::replace(&mut self.dot, item.clone());
                        if let Some(v) = var {
                            self.vars.push((v.clone(), item));
                        }
                        self.render(body, out)?;
                        self.dot = saved;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Go's `printf` for `%s`, `%d`, `%v`, `%q` and `%%`.
fn printf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('q') => out.push_str(
                &serde_json::to_string(&it.next().map(to_text).unwrap_or_default()).unwrap_or_default(),
            ),
            Some(_) => out.push_str(&it.next().map(to_text).unwrap_or_default()),
            None => out.push('%'),
        }
    }
    out
}

/// Renders `src` (named `file` in errors) with `.` = `data`, `env` giving environment variables and
/// `read` the files `readFile` names (None: read as empty).
pub fn render(
    src: &str,
    file: &str,
    data: &Value,
    env: &dyn Fn(&str) -> Option<String>,
    read: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InvalidInput> {
    let ctx = Ctx { file };
    let toks = tokenize(src, &ctx)?;
    let mut pos = 0;
    let (nodes, stop) = parse_nodes(&toks, &mut pos, &ctx)?;
    if let Some((s, line)) = stop {
        return Err(ctx.err(line, format!("{{{{ {s} }}}} without a matching if/with/range")));
    }
    let mut scope =
        Scope { dot: data.clone(), vars: vec![("$".to_string(), data.clone())], env, read, ctx: &ctx };
    let mut out = String::new();
    scope.render(&nodes, &mut out)?;
    Ok(out)
}

/// Data for a helmfile template: the environment's name and values and the namespace.
pub fn helmfile_data(environment: &str, values: Value, namespace: &str) -> Value {
    let mut env = Map::new();
    env.insert("Name".into(), Value::String(environment.to_string()));
    env.insert("Values".into(), values);
    serde_json::json!({"Environment": Value::Object(env), "Namespace": namespace, "Values": {}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(src: &str, env_name: &str) -> Result<String, InvalidInput> {
        let data = helmfile_data(
            env_name,
            json!({"gateway": {"provider": "istio"}, "inferencePool": {"apiVersion": "v1"}}),
            "",
        );
        render(src, "helmfile.yaml.gotmpl", &data, &|k| (k == "SET").then(|| "x".to_string()), &|_| None)
    }

    #[test]
    fn helmfile_constructs() {
        let src = r#"{{- $ns := .Namespace | default "llm-d" -}}
{{- $rn := (env "RELEASE_NAME_POSTFIX") | default "guide" -}}
releases:
  - name: {{ printf "gaie-%s" $rn | quote }}
    namespace: {{ $ns }}
    values:
    {{- if eq .Environment.Name "gke" }}
      - ms/values_gke.yaml
    {{- else if or (eq .Environment.Name "xpu") (eq .Environment.Name "tpu") }}
      - ms/values_xpu.yaml
    {{- else }}
      - ms/values.yaml
    {{- end }}
      - gateway:
          {{ .Environment.Values.gateway | toYaml | nindent 10 }}
    set: [{name: x, value: {{ env "SET" | quote }}}]
"#;
        let out = r(src, "default").unwrap();
        let v: serde_yaml::Value = serde_yaml::from_str(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        let rel = &v["releases"][0];
        assert_eq!(rel["name"].as_str(), Some("gaie-guide"));
        assert_eq!(rel["namespace"].as_str(), Some("llm-d"));
        assert_eq!(rel["values"][0].as_str(), Some("ms/values.yaml"));
        assert_eq!(rel["values"][1]["gateway"]["provider"].as_str(), Some("istio"));
        assert_eq!(rel["set"][0]["value"].as_str(), Some("x"));
        let gke = r(src, "gke").unwrap();
        assert!(gke.contains("ms/values_gke.yaml") && !gke.contains("ms/values.yaml"), "{gke}");
        assert!(r(src, "tpu").unwrap().contains("values_xpu.yaml"));
    }

    #[test]
    fn unsupported_constructs_name_the_line() {
        let e = r("a: 1\nb: {{ exec \"ls\" }}\n", "default").unwrap_err();
        assert_eq!(e.field, "helmfile.yaml.gotmpl:2");
        assert!(e.problem.contains("\"exec\""), "{e}");
        let e = r("{{ if true }}\nx\n", "default").unwrap_err();
        assert!(e.problem.contains("without end"), "{e}");
        let e = r("{{ requiredEnv \"NOPE\" }}", "default").unwrap_err();
        assert!(e.problem.contains("NOPE"), "{e}");
        assert_eq!(
            r("{{/* c */}}{{ with .Environment.Values.gateway }}{{ .provider }}{{ end }}", "d").unwrap(),
            "istio"
        );
        assert_eq!(r("{{ range $x := list 1 2 }}{{ $x }}{{ end }}", "d").unwrap(), "12");
    }
}
