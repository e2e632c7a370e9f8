//! Content negotiation for `/metrics`: OpenMetrics 1.0 when the scraper accepts
//! it, else the classic text format 0.0.4; gzip when asked. Pure functions over header values.

use crate::expose::Format;

/// One media range of an `Accept` header with its q-value.
#[derive(Debug, PartialEq)]
struct Range<'a> {
    media: &'a str,
    version: Option<&'a str>,
    q: f32,
}

fn ranges(header: &str) -> Vec<Range<'_>> {
    header
        .split(',')
        .filter_map(|part| {
            let mut it = part.split(';').map(str::trim);
            let media = it.next().filter(|m| !m.is_empty())?;
            let mut r = Range { media, version: None, q: 1.0 };
            for p in it {
                let Some((k, v)) = p.split_once('=') else {
                    continue;
                };
                match k.trim().to_ascii_lowercase().as_str() {
                    "q" => {
                        r.q = v.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)).unwrap_or(0.0)
                    }
                    "version" => r.version = Some(v.trim().trim_matches('"')),
                    _ => {}
                }
            }
            Some(r)
        })
        .collect()
}

/// The format to serve for an `Accept` header (None when absent). The highest q-value among
/// the forms we can produce wins; ties go to OpenMetrics. Anything else falls back to text 0.0.4,
/// as the Go client does, rather than failing the scrape.
pub fn format(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Text004;
    };
    let mut best: Option<(f32, Format)> = None;
    for r in ranges(accept) {
        if r.q <= 0.0 {
            continue;
        }
        let media = r.media.to_ascii_lowercase();
        let f = match media.as_str() {
            "application/openmetrics-text" if r.version.is_none_or(|v| v.starts_with("1.")) => {
                Format::OpenMetrics
            }
            "text/plain" if r.version.is_none_or(|v| v == "0.0.4") => Format::Text004,
            "text/*" | "*/*" => Format::Text004,
            _ => continue,
        };
        let better = match best {
            None => true,
            Some((q, bf)) => r.q > q || (r.q == q && f == Format::OpenMetrics && bf != Format::OpenMetrics),
        };
        if better {
            best = Some((r.q, f));
        }
    }
    best.map_or(Format::Text004, |(_, f)| f)
}

/// Whether `Accept-Encoding` allows gzip (q > 0, directly or through `*`).
pub fn gzip(accept_encoding: Option<&str>) -> bool {
    let Some(h) = accept_encoding else {
        return false;
    };
    let mut star = None;
    for r in ranges(h) {
        match r.media.to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => return r.q > 0.0,
            "*" => star = Some(r.q > 0.0),
            _ => {}
        }
    }
    star.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_2_accept_header_gets_openmetrics() {
        let h = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(format(Some(h)), Format::OpenMetrics);
    }

    #[test]
    fn text_preferred_by_q() {
        let h = "application/openmetrics-text;version=1.0.0;q=0.2,text/plain;version=0.0.4;q=0.9";
        assert_eq!(format(Some(h)), Format::Text004);
    }

    #[test]
    fn openmetrics_with_q_zero_is_refused() {
        assert_eq!(format(Some("application/openmetrics-text; q=0, */*")), Format::Text004);
    }

    #[test]
    fn unsupported_openmetrics_version_falls_back() {
        assert_eq!(format(Some("application/openmetrics-text;version=0.0.1")), Format::Text004);
        assert_eq!(format(Some("application/openmetrics-text;version=\"1.0.0\"")), Format::OpenMetrics);
    }

    #[test]
    fn defaults() {
        assert_eq!(format(None), Format::Text004);
        assert_eq!(format(Some("")), Format::Text004);
        assert_eq!(format(Some("application/json")), Format::Text004);
        assert_eq!(format(Some("APPLICATION/OpenMetrics-Text")), Format::OpenMetrics);
        assert_eq!(
            format(Some("text/plain;q=garbage,application/openmetrics-text;q=0.1")),
            Format::OpenMetrics
        );
    }

    #[test]
    fn tie_goes_to_openmetrics() {
        assert_eq!(format(Some("text/plain, application/openmetrics-text")), Format::OpenMetrics);
    }

    #[test]
    fn gzip_negotiation() {
        assert!(gzip(Some("gzip")));
        assert!(gzip(Some("deflate, gzip;q=0.5")));
        assert!(!gzip(Some("gzip;q=0")));
        assert!(gzip(Some("*")));
        assert!(!gzip(Some("*;q=0")));
        assert!(!gzip(Some("identity")));
        assert!(!gzip(None));
        assert!(!gzip(Some("gzip;q=0, *")));
    }
}
