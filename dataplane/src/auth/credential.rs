//! Reading a credential from where the policy says it is (a header after a
//! prefix, a cookie, a query parameter), and taking it out of the request
//! so the backend does not receive it unless the policy keeps it.

use crate::context::RequestContext;
use http::HeaderValue;
use http::header::COOKIE;
use tollgate_snapshot::CredentialSource;

/// A credential found in the request, and where.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Found<'s> {
    /// The credential itself.
    pub(crate) value: String,
    /// The source it came from.
    pub(crate) source: &'s CredentialSource,
}

/// The `Authorization: Bearer` source used when a policy names none.
pub(crate) fn bearer() -> CredentialSource {
    CredentialSource::Header {
        name: "authorization".into(),
        prefix: Some("Bearer ".into()),
    }
}

/// The first credential present in `sources`, tried in order. A header
/// whose prefix does not match holds no credential of this kind (an
/// `Authorization: Basic` is not a bearer token).
pub(crate) fn find<'s>(
    sources: &'s [CredentialSource],
    ctx: &RequestContext<'_>,
) -> Option<Found<'s>> {
    sources.iter().find_map(|source| {
        let value = match source {
            CredentialSource::Header { name, prefix } => {
                let raw = ctx.headers.get(name.as_str())?.to_str().ok()?;
                strip_prefix(raw, prefix.as_deref())?.trim().to_string()
            }
            CredentialSource::Cookie { name } => cookie(ctx, name)?,
            CredentialSource::Query { name } => query_param(ctx.query.as_deref()?, name)?,
        };
        (!value.is_empty()).then_some(Found { value, source })
    })
}

/// Removes the credential `found` came from, so the backend never sees it.
pub(crate) fn remove(found: &Found<'_>, ctx: &mut RequestContext<'_>) {
    match found.source {
        CredentialSource::Header { name, .. } => {
            ctx.headers.remove(name.as_str());
        }
        CredentialSource::Cookie { name } => remove_cookie(ctx, name),
        CredentialSource::Query { name } => {
            if let Some(query) = &ctx.query {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| decode(pair.split('=').next().unwrap_or("")) != *name)
                    .collect();
                ctx.query = (!kept.is_empty()).then(|| kept.join("&"));
            }
        }
    }
}

fn strip_prefix<'v>(raw: &'v str, prefix: Option<&str>) -> Option<&'v str> {
    let Some(prefix) = prefix else {
        return Some(raw);
    };
    let head = raw.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &raw[prefix.len()..])
}

fn cookies<'h>(ctx: &'h RequestContext<'_>) -> impl Iterator<Item = (&'h str, &'h str)> {
    ctx.headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            Some((name.trim(), value.trim()))
        })
}

/// The value of cookie `name`.
pub(crate) fn cookie(ctx: &RequestContext<'_>, name: &str) -> Option<String> {
    cookies(ctx)
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_string())
}

fn remove_cookie(ctx: &mut RequestContext<'_>, name: &str) {
    let kept: Vec<String> = cookies(ctx)
        .filter(|(n, _)| *n != name)
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    ctx.headers.remove(COOKIE);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
    {
        ctx.headers.insert(COOKIE, value);
    }
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key) == name).then(|| decode(value))
    })
}

fn decode(text: &str) -> String {
    let plus = text.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::tests::context;

    #[test]
    fn header_prefix_cookie_and_query_sources() {
        let sources = vec![
            bearer(),
            CredentialSource::Cookie { name: "tok".into() },
            CredentialSource::Query {
                name: "access_token".into(),
            },
        ];
        let ctx = context(&[("authorization", "bearer abc")], None);
        assert_eq!(find(&sources, &ctx).unwrap().value, "abc");
        // A Basic header is not a bearer token; the cookie is next.
        let ctx = context(
            &[("authorization", "Basic eA=="), ("cookie", "a=1; tok=xyz")],
            None,
        );
        assert_eq!(find(&sources, &ctx).unwrap().value, "xyz");
        let ctx = context(&[], Some("a=1&access_token=q%2Bv&b=2"));
        assert_eq!(find(&sources, &ctx).unwrap().value, "q+v");
        assert!(find(&sources, &context(&[], None)).is_none());
    }

    #[test]
    fn removal_keeps_everything_else() {
        let cookie_source = [CredentialSource::Cookie { name: "tok".into() }];
        let mut ctx = context(&[("cookie", "a=1; tok=xyz; b=2")], None);
        let found = find(&cookie_source, &ctx).unwrap();
        remove(&found, &mut ctx);
        assert_eq!(ctx.headers[COOKIE], "a=1; b=2");
        let query_source = [CredentialSource::Query { name: "key".into() }];
        let mut ctx = context(&[], Some("a=1&key=s3cret&b=2"));
        let found = find(&query_source, &ctx).unwrap();
        remove(&found, &mut ctx);
        assert_eq!(ctx.query.as_deref(), Some("a=1&b=2"));
        let mut ctx = context(&[], Some("key=s3cret"));
        let found = find(&query_source, &ctx).unwrap();
        remove(&found, &mut ctx);
        assert_eq!(ctx.query, None);
    }
}
