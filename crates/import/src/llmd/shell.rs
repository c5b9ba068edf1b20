//! Launch scripts as model-server containers run them (`command: [/bin/bash, -c]`, `args: [script]`):
//! just enough of the POSIX shell to find the command that starts vLLM and see its arguments as the
//! process would. Words, quotes (single, double, spanning lines), `\` continuations, comments,
//! `;`/`&&`/`||`/`|` separators, `NAME=value` and `export NAME=value` assignments, and the
//! expansions `$V`, `${V}`, `${V:-d}`, `${V-d}`, `${V:=d}`, `${V=d}`, `$((arithmetic))`.
//! Kubernetes' own `$(VAR)` references are expanded first ([`expand_k8s`]), as the kubelet does.
//! Anything the reader cannot evaluate (a command substitution, an unset variable) becomes a warning
//! naming it, never a silent guess.

use std::collections::BTreeMap;

/// The variables a script starts with (container env, plus what LeaderWorkerSet and the charts inject).
pub type Env = BTreeMap<String, String>;

/// Expands Kubernetes `$(VAR)` references to variables `env` defines; `$$` stands for `$`, and a
/// reference to an undefined variable stays as written (the kubelet's rules).
pub fn expand_k8s(s: &str, env: &Env) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(j) if is_name(&inner[..j]) && env.contains_key(&inner[..j]) => {
                    out.push_str(&env[&inner[..j]]);
                    rest = &inner[j + 1..];
                }
                _ => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(x) if x == '_' || x.is_ascii_alphabetic())
        && c.all(|x| x == '_' || x.is_ascii_alphanumeric())
}

/// One simple command of a script, after expansion.
#[derive(Debug, Clone, PartialEq)]
struct Command {
    words: Vec<String>,
}

/// What reading a script found: the words of every command in order, and what could not be evaluated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Script {
    commands: Vec<Command>,
    /// Expansions the reader could not evaluate, in words.
    pub warnings: Vec<String>,
}

impl Script {
    /// Reads `text` with the variables of `env`, evaluating assignments as it goes.
    pub fn read(text: &str, env: &Env) -> Script {
        let mut r = Reader { chars: text.chars().collect(), pos: 0, env: env.clone(), warnings: Vec::new() };
        let mut commands = Vec::new();
        while let Some(words) = r.command() {
            // Assignments (`A=1`, `export A=1`) change the variables later commands see.
            let assigns: Vec<&String> = match words.first().map(String::as_str) {
                Some("export") | Some("local") | Some("declare") => words[1..].iter().collect(),
                _ if words.iter().all(|w| assignment(w).is_some()) => words.iter().collect(),
                _ => Vec::new(),
            };
            for w in assigns {
                if let Some((k, v)) = assignment(w) {
                    r.env.insert(k.to_string(), v.to_string());
                }
            }
            if !words.is_empty() {
                commands.push(Command { words });
            }
        }
        Script { commands, warnings: r.warnings }
    }

    /// The words of the first command whose words satisfy `pred`.
    pub fn find(&self, pred: impl Fn(&[String]) -> bool) -> Option<Vec<String>> {
        self.commands.iter().find(|c| pred(&c.words)).map(|c| c.words.clone())
    }
}

/// `NAME=value` as (name, value).
fn assignment(w: &str) -> Option<(&str, &str)> {
    let (k, v) = w.split_once('=')?;
    is_name(k).then_some((k, v))
}

struct Reader {
    chars: Vec<char>,
    pos: usize,
    env: Env,
    warnings: Vec<String>,
}

impl Reader {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        self.chars.get(self.pos + k).copied()
    }

    /// The next simple command's words; None at the end of the script.
    fn command(&mut self) -> Option<Vec<String>> {
        if self.pos >= self.chars.len() {
            return None;
        }
        let mut words: Vec<String> = Vec::new();
        let mut cur = String::new();
        let mut in_word = false;
        while let Some(c) = self.peek() {
            match c {
                '\n' | ';' | '&' | '|' => {
                    self.pos += 1;
                    // `&&`, `||`: one separator.
                    if (c == '&' || c == '|') && self.peek() == Some(c) {
                        self.pos += 1;
                    }
                    if in_word || !words.is_empty() {
                        break;
                    }
                    continue;
                }
                ' ' | '\t' | '\r' => {
                    self.pos += 1;
                    if in_word {
                        words.push(std::mem::take(&mut cur));
                        in_word = false;
                    }
                }
                '#' if !in_word => {
                    while self.peek().is_some_and(|x| x != '\n') {
                        self.pos += 1;
                    }
                }
                '\\' => {
                    self.pos += 1;
                    match self.peek() {
                        // Line continuation.
                        Some('\n') => self.pos += 1,
                        Some(x) => {
                            self.pos += 1;
                            cur.push(x);
                            in_word = true;
                        }
                        None => {}
                    }
                }
                '\'' => {
                    self.pos += 1;
                    in_word = true;
                    while let Some(x) = self.peek() {
                        self.pos += 1;
                        if x == '\'' {
                            break;
                        }
                        cur.push(x);
                    }
                }
                '"' => {
                    self.pos += 1;
                    in_word = true;
                    while let Some(x) = self.peek() {
                        match x {
                            '"' => {
                                self.pos += 1;
                                break;
                            }
                            '\\' if matches!(self.peek_at(1), Some('"' | '\\' | '$' | '`' | '\n')) => {
                                let next = self.peek_at(1).unwrap_or('\\');
                                self.pos += 2;
                                if next != '\n' {
                                    cur.push(next);
                                }
                            }
                            '$' => {
                                let v = self.dollar();
                                cur.push_str(&v);
                            }
                            _ => {
                                self.pos += 1;
                                cur.push(x);
                            }
                        }
                    }
                }
                '$' => {
                    let v = self.dollar();
                    // Unquoted expansions split on whitespace.
                    let mut parts = v.split_whitespace();
                    let starts_blank = v.starts_with(char::is_whitespace);
                    if starts_blank && in_word {
                        words.push(std::mem::take(&mut cur));
                        in_word = false;
                    }
                    if let Some(first) = parts.next() {
                        cur.push_str(first);
                        in_word = true;
                        for p in parts {
                            words.push(std::mem::take(&mut cur));
                            cur.push_str(p);
                        }
                        if v.ends_with(char::is_whitespace) {
                            words.push(std::mem::take(&mut cur));
                            in_word = false;
                        }
                    }
                }
                _ => {
                    self.pos += 1;
                    cur.push(c);
                    in_word = true;
                }
            }
        }
        if in_word {
            words.push(cur);
        }
        Some(words)
    }

    /// Reads one `$` expansion at the cursor and returns its value.
    fn dollar(&mut self) -> String {
        self.pos += 1; // `$`
        match self.peek() {
            Some('(') if self.peek_at(1) == Some('(') => {
                self.pos += 2;
                let start = self.pos;
                let mut depth = 0i32;
                while let Some(c) = self.peek() {
                    if c == '(' {
                        depth += 1;
                    } else if c == ')' {
                        if depth == 0 && self.peek_at(1) == Some(')') {
                            break;
                        }
                        depth -= 1;
                    }
                    self.pos += 1;
                }
                let expr: String = self.chars[start..self.pos].iter().collect();
                self.pos = (self.pos + 2).min(self.chars.len());
                match self.arith(&expr) {
                    Some(v) => v.to_string(),
                    None => {
                        self.warnings.push(format!("cannot evaluate $(({}))", expr.trim()));
                        String::new()
                    }
                }
            }
            Some('(') => {
                // Command substitution: not run.
                let start = self.pos;
                let mut depth = 0i32;
                while let Some(c) = self.peek() {
                    self.pos += 1;
                    if c == '(' {
                        depth += 1;
                    } else if c == ')' {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                self.warnings.push(format!("command substitution ${text} is not run; read as empty"));
                String::new()
            }
            Some('{') => {
                self.pos += 1;
                let start = self.pos;
                while self.peek().is_some_and(|c| c != '}') {
                    self.pos += 1;
                }
                let inner: String = self.chars[start..self.pos].iter().collect();
                self.pos = (self.pos + 1).min(self.chars.len());
                self.braced(&inner)
            }
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c == '_' || c.is_ascii_alphanumeric()) {
                    self.pos += 1;
                }
                let name: String = self.chars[start..self.pos].iter().collect();
                self.var(&name)
            }
            // `$1`, `$@`, `$?`...: positional and special parameters are empty here.
            Some(c) if c.is_ascii_digit() || "@*#?$!-".contains(c) => {
                self.pos += 1;
                String::new()
            }
            _ => "$".to_string(),
        }
    }

    /// A variable's value; an unset one is empty, with a warning.
    fn var(&mut self, name: &str) -> String {
        match self.env.get(name) {
            Some(v) => v.clone(),
            None => {
                self.warnings.push(format!("${name} is not set; read as empty"));
                String::new()
            }
        }
    }

    /// `${...}` forms: `V`, `V:-d`, `V-d`, `V:=d`, `V=d`, `#V` (length).
    fn braced(&mut self, inner: &str) -> String {
        if let Some(name) = inner.strip_prefix('#').filter(|n| is_name(n)) {
            return self.var(name).chars().count().to_string();
        }
        let split = inner.find(|c: char| !(c == '_' || c.is_ascii_alphanumeric())).unwrap_or(inner.len());
        let (name, op) = inner.split_at(split);
        if !is_name(name) {
            self.warnings.push(format!("cannot evaluate ${{{inner}}}"));
            return String::new();
        }
        let value = self.env.get(name).cloned();
        let expand_default = |r: &mut Reader, d: &str| {
            let mut sub =
                Reader { chars: d.chars().collect(), pos: 0, env: r.env.clone(), warnings: Vec::new() };
            let words = sub.command().unwrap_or_default();
            r.warnings.extend(sub.warnings);
            words.join(" ")
        };
        match op {
            "" => self.var(name),
            _ if op.starts_with(":-") || op.starts_with(":=") => match value.filter(|v| !v.is_empty()) {
                Some(v) => v,
                None => {
                    let d = expand_default(self, &op[2..]);
                    if op.starts_with(":=") {
                        self.env.insert(name.to_string(), d.clone());
                    }
                    d
                }
            },
            _ if op.starts_with('-') || op.starts_with('=') => match value {
                Some(v) => v,
                None => {
                    let d = expand_default(self, &op[1..]);
                    if op.starts_with('=') {
                        self.env.insert(name.to_string(), d.clone());
                    }
                    d
                }
            },
            _ => {
                self.warnings.push(format!("cannot evaluate ${{{inner}}}"));
                String::new()
            }
        }
    }

    /// Integer arithmetic of `$((...))`: + - * / % and parentheses over numbers and variables.
    fn arith(&mut self, expr: &str) -> Option<i64> {
        // Expand `$V` / `${V}` first; bare names are read as variables by the evaluator.
        let mut sub =
            Reader { chars: expr.chars().collect(), pos: 0, env: self.env.clone(), warnings: Vec::new() };
        let mut text = String::new();
        while let Some(c) = sub.peek() {
            if c == '$' {
                let v = sub.dollar();
                text.push_str(&v);
            } else {
                sub.pos += 1;
                text.push(c);
            }
        }
        self.warnings.extend(sub.warnings);
        let tokens = arith_tokens(&text)?;
        let mut p = Arith { tokens, pos: 0, env: &self.env, unset: Vec::new() };
        let v = p.sum()?;
        if p.pos != p.tokens.len() {
            return None;
        }
        for name in p.unset {
            self.warnings.push(format!("${name} is not set; read as 0 in $(({}))", expr.trim()));
        }
        Some(v)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(i64),
    Name(String),
    Op(char),
}

fn arith_tokens(s: &str) -> Option<Vec<Tok>> {
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < cs.len() && cs[i].is_ascii_digit() {
                i += 1;
            }
            out.push(Tok::Num(cs[start..i].iter().collect::<String>().parse().ok()?));
        } else if c == '_' || c.is_ascii_alphabetic() {
            let start = i;
            while i < cs.len() && (cs[i] == '_' || cs[i].is_ascii_alphanumeric()) {
                i += 1;
            }
            out.push(Tok::Name(cs[start..i].iter().collect()));
        } else if "+-*/%()".contains(c) {
            out.push(Tok::Op(c));
            i += 1;
        } else {
            return None;
        }
    }
    Some(out)
}

struct Arith<'a> {
    tokens: Vec<Tok>,
    pos: usize,
    env: &'a Env,
    unset: Vec<String>,
}

impl Arith<'_> {
    fn sum(&mut self) -> Option<i64> {
        let mut v = self.product()?;
        while let Some(Tok::Op(op @ ('+' | '-'))) = self.tokens.get(self.pos).cloned() {
            self.pos += 1;
            let r = self.product()?;
            v = if op == '+' { v.checked_add(r)? } else { v.checked_sub(r)? };
        }
        Some(v)
    }

    fn product(&mut self) -> Option<i64> {
        let mut v = self.unary()?;
        while let Some(Tok::Op(op @ ('*' | '/' | '%'))) = self.tokens.get(self.pos).cloned() {
            self.pos += 1;
            let r = self.unary()?;
            v = match op {
                '*' => v.checked_mul(r)?,
                '/' => v.checked_div(r)?,
                _ => v.checked_rem(r)?,
            };
        }
        Some(v)
    }

    fn unary(&mut self) -> Option<i64> {
        match self.tokens.get(self.pos).cloned()? {
            Tok::Op('-') => {
                self.pos += 1;
                self.unary()?.checked_neg()
            }
            Tok::Op('+') => {
                self.pos += 1;
                self.unary()
            }
            Tok::Op('(') => {
                self.pos += 1;
                let v = self.sum()?;
                if self.tokens.get(self.pos) != Some(&Tok::Op(')')) {
                    return None;
                }
                self.pos += 1;
                Some(v)
            }
            Tok::Num(n) => {
                self.pos += 1;
                Some(n)
            }
            Tok::Name(name) => {
                self.pos += 1;
                match self.env.get(&name) {
                    Some(v) => v.trim().parse().ok(),
                    None => {
                        self.unset.push(name);
                        Some(0)
                    }
                }
            }
            Tok::Op(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn words(script: &str, e: &Env) -> (Vec<String>, Vec<String>) {
        let s = Script::read(script, e);
        let w = s.find(|w| w.iter().any(|x| x == "serve")).unwrap_or_default();
        (w, s.warnings)
    }

    #[test]
    fn lws_launch_script_expands_like_bash() {
        let script = r#"
# comment mentioning vllm serve in prose
START_RANK=$(( ${LWS_WORKER_INDEX:-0} * DP_SIZE_LOCAL ))
source ${VENV_PATH:-/opt/venv}/bin/activate
exec vllm serve \
  deepseek-ai/DeepSeek-V2-Lite \
  --tensor-parallel-size $TP_SIZE \
  --data-parallel-size $((LWS_GROUP_SIZE * DP_SIZE_LOCAL)) \
  --data-parallel-start-rank $START_RANK \
  --kv_transfer_config '{"kv_connector":"NixlConnector",
                         "kv_role":"kv_both"}' \
  --served "a b" --kv-cache-memory-bytes=${KV_CACHE_MEMORY_BYTES-}
  # trailing comment --not-an-arg
"#;
        let e = env(&[("LWS_GROUP_SIZE", "2"), ("DP_SIZE_LOCAL", "8"), ("TP_SIZE", "1")]);
        let (w, warnings) = words(script, &e);
        assert_eq!(
            w,
            [
                "exec",
                "vllm",
                "serve",
                "deepseek-ai/DeepSeek-V2-Lite",
                "--tensor-parallel-size",
                "1",
                "--data-parallel-size",
                "16",
                "--data-parallel-start-rank",
                "0",
                "--kv_transfer_config",
                "{\"kv_connector\":\"NixlConnector\",\n                         \"kv_role\":\"kv_both\"}",
                "--served",
                "a b",
                "--kv-cache-memory-bytes="
            ]
        );
        // LWS_WORKER_INDEX had a default; nothing was unset.
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn unset_variables_and_substitutions_are_named() {
        let (w, warnings) =
            words("vllm serve m --max-num-seqs $MISSING --x $(hostname) $((A + 1))", &Env::new());
        assert_eq!(w, ["vllm", "serve", "m", "--max-num-seqs", "--x", "1"]);
        let all = warnings.join("\n");
        assert!(all.contains("$MISSING") && all.contains("$(hostname)") && all.contains("$A"), "{all}");
    }

    #[test]
    fn assignments_defaults_and_separators() {
        let e = env(&[("EMPTY", "")]);
        let s = Script::read(
            "set -e; export N=4 && M=${N}0\nX=${EMPTY:-d} Y=${EMPTY-d}\nvllm serve m -tp $N --dp $M $X. $Y. ${#M} \"$((M / (N - 2)))\"",
            &e,
        );
        let w = s.find(|w| w.contains(&"serve".to_string())).unwrap();
        assert_eq!(w[3..], ["-tp", "4", "--dp", "40", "d.", ".", "2", "20"]);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        // Unquoted expansions split into words; quoted ones do not.
        let s = Script::read("A='--a 1'\nvllm serve m $A \"$A\"", &Env::new());
        assert_eq!(s.find(|w| w[0] == "vllm").unwrap(), ["vllm", "serve", "m", "--a", "1", "--a 1"]);
    }

    #[test]
    fn kubernetes_references() {
        let e = env(&[("A", "1"), ("POD", "p")]);
        assert_eq!(expand_k8s("--x=$(A) $(B) $$(A) $(POD)-$A", &e), "--x=1 $(B) $(A) p-$A");
        assert!(!is_name("1A") && is_name("_a1"));
    }
}
