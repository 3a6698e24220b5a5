//! Writing a benchmark's section into docs/benchmarks.md and keeping every
//! other section as it is. Two kinds of sections exist: a whole `## Title`
//! section (up to the next `## `), and a region between
//! `<!-- NAME:begin -->` and `<!-- NAME:end -->` under a heading.

/// Replaces the `## Title` section whose title is the first line of
/// `section` (appends it when missing). Runs of blank lines in `section`
/// are collapsed.
pub fn put_heading(text: &str, section: &str) -> Result<String, String> {
    let title = section
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("## "))
        .ok_or("the section must start with a `## Title` line")?;
    let new = collapse_blank_lines(section)
        .trim_end_matches('\n')
        .to_string()
        + "\n";
    let mut parts = split_sections(text);
    let header = format!("## {title}\n");
    if let Some(i) = parts.iter().position(|p| p.starts_with(&header)) {
        let last = i == parts.len() - 1;
        parts[i] = if last { new } else { new + "\n" };
        return Ok(parts.concat());
    }
    Ok(text.trim_end_matches('\n').to_string() + "\n\n" + &new)
}

/// Replaces the region between `<!-- NAME:begin -->` and `<!-- NAME:end
/// -->` (markers included) by `region`, which must hold both markers;
/// appends it under `## HEADING` when the file has none.
pub fn put_region(text: &str, name: &str, heading: &str, region: &str) -> Result<String, String> {
    let (begin, end) = (
        format!("<!-- {name}:begin -->"),
        format!("<!-- {name}:end -->"),
    );
    if !region.contains(&begin) || !region.contains(&end) {
        return Err(format!("the region must hold `{begin}` and `{end}`"));
    }
    let region = region.trim_end_matches('\n').to_string() + "\n";
    match (text.find(&begin), text.find(&end)) {
        (Some(b), Some(e)) if b < e => {
            let mut after = e + end.len();
            if text[after..].starts_with('\n') {
                after += 1;
            }
            Ok(format!("{}{}{}", &text[..b], region, &text[after..]))
        }
        _ => Ok(text.trim_end_matches('\n').to_string() + "\n\n## " + heading + "\n\n" + &region),
    }
}

/// The text split before every line that starts with `## `.
fn split_sections(text: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    for line in text.split_inclusive('\n') {
        if line.starts_with("## ") && !parts.last().is_some_and(String::is_empty) {
            parts.push(String::new());
        }
        parts.last_mut().expect("one part").push_str(line);
    }
    parts
}

fn collapse_blank_lines(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut blank = 0;
    for line in s.split_inclusive('\n') {
        if line.trim().is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
    }
    out
}

/// `cordon-bench put-section FILE SECTION.md...` and `cordon-bench
/// put-region FILE NAME HEADING REGION.md`: rewrite FILE in place.
pub fn command(args: &[String]) -> Result<(), String> {
    let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"));
    let (verb, file) = (args[0].as_str(), args.get(1).ok_or("FILE missing")?);
    let mut text = if std::path::Path::new(file).exists() {
        read(file)?
    } else {
        "# Benchmarks\n".to_string()
    };
    match verb {
        "put-section" => {
            for s in &args[2..] {
                // A section the run did not produce (e.g. --churn-only)
                // leaves the file's as it is.
                if std::path::Path::new(s).exists() {
                    text = put_heading(&text, &read(s)?)?;
                }
            }
        }
        _ => {
            let [name, heading, region] = &args[2..] else {
                return Err("usage: cordon-bench put-region FILE NAME HEADING REGION.md".into());
            };
            text = put_region(&text, name, heading, &read(region)?)?;
        }
    }
    std::fs::write(file, text).map_err(|e| format!("{file}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Benchmarks\n\nintro\n\n## A\n\nold a\n\n## Daemon\n\nold d\n\n## Daemon under churn\n\nold c\n";

    #[test]
    fn replaces_a_heading_section_and_keeps_the_others() {
        let out = put_heading(DOC, "## Daemon\n\nnew d\n\n\n\nmore\n").unwrap();
        assert_eq!(
            out,
            "# Benchmarks\n\nintro\n\n## A\n\nold a\n\n## Daemon\n\nnew d\n\nmore\n\n## Daemon under churn\n\nold c\n"
        );
        // The last section, and a missing one.
        let out = put_heading(DOC, "## Daemon under churn\nnew c\n").unwrap();
        assert!(out.ends_with("## Daemon under churn\nnew c\n"), "{out}");
        assert!(out.contains("old d"));
        let out = put_heading(DOC, "## Reload\nr\n").unwrap();
        assert!(out.ends_with("old c\n\n## Reload\nr\n"), "{out}");
        assert!(put_heading(DOC, "no title").is_err());
    }

    #[test]
    fn replaces_a_marked_region() {
        let doc = "## Reload\n\n<!-- reload:begin -->\nold\n<!-- reload:end -->\n\n## Next\n";
        let region = "<!-- reload:begin -->\nnew\n<!-- reload:end -->";
        let out = put_region(doc, "reload", "Reload", region).unwrap();
        assert_eq!(
            out,
            "## Reload\n\n<!-- reload:begin -->\nnew\n<!-- reload:end -->\n\n## Next\n"
        );
        let out = put_region("# B\n", "reload", "Reload", region).unwrap();
        assert_eq!(
            out,
            "# B\n\n## Reload\n\n<!-- reload:begin -->\nnew\n<!-- reload:end -->\n"
        );
        assert!(put_region(doc, "reload", "Reload", "no markers").is_err());
    }
}
