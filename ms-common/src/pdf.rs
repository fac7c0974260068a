//! A minimal PDF writer for text pages: the demo seed's files and the tests' PDFs (page
//! counts, previews). Written out with exact cross-reference offsets, so every reader
//! (poppler included) takes it as it is, with no repair.

use std::fmt::Write;

/// One line of text on a page.
#[derive(Debug, Clone, Copy)]
pub struct TextLine<'a> {
    /// Font size in points.
    pub size: u32,
    /// Distance of the baseline from the bottom of the page, in points.
    pub y: u32,
    /// The text: printable ASCII; parentheses and backslashes become `?`, anything else `-`.
    pub text: &'a str,
}

/// An A4 PDF with one page per entry of `pages`, each line set in Helvetica at 56 pt from
/// the left edge.
pub fn text_pdf(pages: &[Vec<TextLine<'_>>]) -> Vec<u8> {
    let n = pages.len();
    let font = 3 + 2 * n;
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 3 + 2 * i)).collect();
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")),
    ];
    for (i, lines) in pages.iter().enumerate() {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {} 0 R \
             /Resources << /Font << /F1 {font} 0 R >> >> >>",
            4 + 2 * i
        ));
        let mut stream = String::new();
        for l in lines {
            let _ = writeln!(
                stream,
                "BT /F1 {} Tf 56 {} Td ({}) Tj ET",
                l.size,
                l.y,
                ascii(l.text)
            );
        }
        objects.push(format!(
            "<< /Length {} >>\nstream\n{stream}endstream",
            stream.len()
        ));
    }
    objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned());
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// Text a PDF string literal may hold as it is.
fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '(' | ')' | '\\' => '?',
            c if c.is_ascii() && !c.is_control() => c,
            _ => '-',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cross_reference_table_points_at_every_object() {
        let line = |text| TextLine {
            size: 12,
            y: 700,
            text,
        };
        let pdf = text_pdf(&[vec![line("one (1)")], vec![line("two é")]]);
        let text = String::from_utf8(pdf).unwrap();
        assert!(text.starts_with("%PDF-1.4\n") && text.ends_with("%%EOF\n"));
        assert!(
            text.contains("/Count 2") && text.contains("(one ?1?)") && text.contains("(two -)")
        );
        let xref_at: usize = text
            .rsplit("startxref\n")
            .next()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(text[xref_at..].starts_with("xref\n0 8\n"));
        for (i, entry) in text[xref_at..].lines().skip(3).take(7).enumerate() {
            let offset: usize = entry[..10].parse().unwrap();
            assert!(
                text[offset..].starts_with(&format!("{} 0 obj", i + 1)),
                "object {}",
                i + 1
            );
        }
    }
}
