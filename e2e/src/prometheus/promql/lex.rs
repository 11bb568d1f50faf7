//! PromQL tokens, as far as the label check needs them.
//!
//! Label matchers and range brackets are read whole: a matcher list becomes
//! the label names it tests, and a range (`[5m]`, `[$__rate_interval]`, a
//! subquery's `[1h:5m]`) is skipped, so Grafana's `$variables`, which only
//! appear inside strings and ranges in a sound query, never reach the
//! walker. Anything else outside them (a stray `$`, `@`) is an error rather
//! than a guess.

/// One token of an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    /// A metric, function, aggregation or keyword name.
    Ident(String),
    /// `{...}`: the label names its matchers test, in order.
    Matchers(Vec<String>),
    /// A number or duration literal (`0.99`, `5m`).
    Number,
    /// A string literal.
    Str,
    /// `[...]`: a range or subquery.
    Range,
    /// `(`.
    Open,
    /// `)`.
    Close,
    /// `,`.
    Comma,
    /// An operator character (`/`, `=`, `-`, ...).
    Operator,
}

/// The tokens of `expr`.
pub(super) fn tokens(expr: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let (token, next) = match c {
            _ if c.is_whitespace() => (None, i + 1),
            '#' => (None, skip_while(&chars, i, |c| c != '\n')),
            '(' => (Some(Token::Open), i + 1),
            ')' => (Some(Token::Close), i + 1),
            ',' => (Some(Token::Comma), i + 1),
            '+' | '-' | '*' | '/' | '%' | '^' | '=' | '!' | '<' | '>' => {
                (Some(Token::Operator), i + 1)
            }
            '"' | '\'' | '`' => (Some(Token::Str), skip_string(&chars, i)?),
            '[' => {
                let end = skip_while(&chars, i, |c| c != ']');
                if end == chars.len() {
                    return Err("unclosed `[`".into());
                }
                (Some(Token::Range), end + 1)
            }
            '{' => {
                let (labels, next) = matchers(&chars, i + 1)?;
                (Some(Token::Matchers(labels)), next)
            }
            _ if c.is_ascii_digit() || c == '.' => (Some(Token::Number), number(&chars, i)),
            _ if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let end = skip_while(&chars, i, |c| c.is_ascii_alphanumeric() || "_:".contains(c));
                let name = chars[i..end].iter().collect();
                (Some(Token::Ident(name)), end)
            }
            _ => return Err(format!("unexpected {c:?} at character {i}")),
        };
        out.extend(token);
        i = next;
    }
    Ok(out)
}

/// The index of the first character from `start` that fails `keep`.
fn skip_while(chars: &[char], start: usize, keep: impl Fn(char) -> bool) -> usize {
    chars[start..]
        .iter()
        .position(|&c| !keep(c))
        .map_or(chars.len(), |n| start + n)
}

/// The end of a number or duration (`0.99`, `1e-3`, `0x1f`, `1h30m`).
fn number(chars: &[char], start: usize) -> usize {
    let mut end = start;
    while let Some(&c) = chars.get(end) {
        let exponent_sign = "+-".contains(c)
            && end > start
            && "eE".contains(chars[end - 1])
            && chars[start].is_ascii_digit();
        if !(c.is_ascii_alphanumeric() || c == '.' || exponent_sign) {
            break;
        }
        end += 1;
    }
    end
}

/// The index just past the string literal opening at `start`.
fn skip_string(chars: &[char], start: usize) -> Result<usize, String> {
    let quote = chars[start];
    let mut i = start + 1;
    while let Some(&c) = chars.get(i) {
        match c {
            // Raw (backquoted) strings have no escapes.
            '\\' if quote != '`' => i += 2,
            _ if c == quote => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err(format!("unclosed string at character {start}"))
}

/// Reads `name op "value", ...}` from `start` (just past the `{`): the
/// label names, and the index just past the `}`.
fn matchers(chars: &[char], start: usize) -> Result<(Vec<String>, usize), String> {
    let mut labels = Vec::new();
    let mut i = start;
    loop {
        i = skip_while(chars, i, char::is_whitespace);
        if chars.get(i) == Some(&'}') {
            return Ok((labels, i + 1));
        }
        let end = skip_while(chars, i, |c| c.is_ascii_alphanumeric() || c == '_');
        if end == i {
            return Err(format!("label name expected at character {i}"));
        }
        labels.push(chars[i..end].iter().collect());
        let op_start = skip_while(chars, end, char::is_whitespace);
        let op_end = skip_while(chars, op_start, |c| "=!~".contains(c));
        let op: String = chars[op_start..op_end].iter().collect();
        if !["=", "!=", "=~", "!~"].contains(&op.as_str()) {
            return Err(format!("matcher operator expected at character {op_start}"));
        }
        i = skip_while(chars, op_end, char::is_whitespace);
        if !chars.get(i).is_some_and(|c| "\"'`".contains(*c)) {
            return Err(format!("label value expected at character {i}"));
        }
        i = skip_string(chars, i)?;
        i = skip_while(chars, i, char::is_whitespace);
        match chars.get(i) {
            Some(',') => i += 1,
            Some('}') => {}
            _ => return Err(format!("`,` or `}}` expected at character {i}")),
        }
    }
}
