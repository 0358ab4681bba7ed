//! WeChat's XML: a hostile-input-safe streaming reader that turns a pushed body into flat fields
//! (element path → text, [`Fields`]), and the one writer of text into it ([`cdata_element`]).
//!
//! The reader refuses DOCTYPE and ENTITY declarations, processing instructions, unknown entity
//! references, deep nesting and absurd field counts, so that nothing an attacker sends can make
//! it expand, recurse or allocate without bound.

use quick_xml::Reader;
use quick_xml::errors::{Error as XmlError, SyntaxError};
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event as XmlEvent;

/// Deepest element path accepted below the root (WeChat's deepest is 4, e.g.
/// `SendPicsInfo/PicList/item/PicMd5Sum`).
pub const MAX_DEPTH: usize = 8;
/// Most leaf fields accepted in one message.
pub const MAX_FIELDS: usize = 512;

/// Why a body is not a message we accept. Texts are short and never quote the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("body is not UTF-8")]
    NotUtf8,
    #[error("DOCTYPE and ENTITY declarations are not allowed")]
    Declaration,
    #[error("processing instructions are not allowed")]
    ProcessingInstruction,
    #[error("unknown entity reference")]
    UnknownEntity,
    #[error("malformed XML at byte {0}")]
    Malformed(u64),
    #[error("elements nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("more than {MAX_FIELDS} fields")]
    TooManyFields,
    #[error("missing field {0}")]
    MissingField(&'static str),
    #[error("invalid field {0}")]
    InvalidField(&'static str),
}

/// Every leaf element of a message in document order, keyed by its path below the root:
/// `Content`, `ScanCodeInfo/ScanResult`, `SendPicsInfo/PicList/item/PicMd5Sum` (repeated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// The first value at `path`.
    pub fn get(&self, path: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, v)| v.as_str())
    }

    /// Every value at `path`, in document order (lists such as `PicList/item`).
    pub fn get_all<'a>(&'a self, path: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(p, _)| p == path)
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(p, v)| (p.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reads `xml` into fields. The root element's name is not checked (WeChat uses `xml`).
    pub fn parse(xml: &str) -> Result<Self, ParseError> {
        FieldReader::default().read(xml)
    }
}

/// State of one streaming read: the current path and, per open element, where its name starts
/// in `path` and whether it has child elements (only leaves carry field text).
#[derive(Default)]
struct FieldReader {
    fields: Vec<(String, String)>,
    path: String,
    open: Vec<(usize, bool)>,
    text: String,
    root_closed: bool,
}

impl FieldReader {
    fn read(mut self, xml: &str) -> Result<Fields, ParseError> {
        let mut reader = Reader::from_str(xml);
        let mut seen_element = false;
        loop {
            let event = match reader.read_event() {
                Ok(event) => event,
                Err(error) => {
                    let position = reader.error_position();
                    tracing::debug!(%error, position, "malformed XML");
                    return Err(classify(&error, xml, position));
                }
            };
            let position = reader.buffer_position();
            match event {
                XmlEvent::Decl(_) if !seen_element => {}
                XmlEvent::Decl(_) | XmlEvent::PI(_) => {
                    return Err(ParseError::ProcessingInstruction);
                }
                XmlEvent::DocType(_) => return Err(ParseError::Declaration),
                XmlEvent::Comment(_) => {}
                XmlEvent::Start(start) => {
                    seen_element = true;
                    self.open_element(start.name().as_ref(), position)?;
                }
                XmlEvent::Empty(start) => {
                    seen_element = true;
                    self.open_element(start.name().as_ref(), position)?;
                    self.close_element()?;
                }
                XmlEvent::End(_) => self.close_element()?,
                XmlEvent::Text(text) => {
                    let text = text
                        .xml10_content()
                        .map_err(|_| ParseError::Malformed(position))?;
                    self.push_text(&text, position)?;
                }
                XmlEvent::CData(cdata) => {
                    let text = cdata
                        .xml10_content()
                        .map_err(|_| ParseError::Malformed(position))?;
                    if !self.inside_root() {
                        return Err(ParseError::Malformed(position));
                    }
                    self.text.push_str(&text);
                }
                XmlEvent::GeneralRef(reference) => {
                    if !self.inside_root() {
                        return Err(ParseError::Malformed(position));
                    }
                    let resolved = reference
                        .resolve_char_ref()
                        .map_err(|_| ParseError::UnknownEntity)?;
                    match resolved {
                        Some(ch) => self.text.push(ch),
                        None => {
                            let name = reference.decode().map_err(|_| ParseError::UnknownEntity)?;
                            let value = resolve_predefined_entity(&name)
                                .ok_or(ParseError::UnknownEntity)?;
                            self.text.push_str(value);
                        }
                    }
                }
                XmlEvent::Eof => {
                    if !self.root_closed {
                        return Err(ParseError::Malformed(position));
                    }
                    return Ok(Fields(self.fields));
                }
            }
        }
    }

    fn inside_root(&self) -> bool {
        !self.open.is_empty()
    }

    fn open_element(&mut self, name: &[u8], position: u64) -> Result<(), ParseError> {
        if self.root_closed {
            return Err(ParseError::Malformed(position));
        }
        // `Reader::from_str` only yields slices of the UTF-8 input.
        let name = std::str::from_utf8(name).map_err(|_| ParseError::NotUtf8)?;
        if self.open.is_empty() {
            // The root: its name is not part of any path.
            self.open.push((0, false));
            return Ok(());
        }
        if self.open.len() > MAX_DEPTH {
            return Err(ParseError::TooDeep);
        }
        if let Some((_, has_children)) = self.open.last_mut() {
            *has_children = true;
        }
        let start = self.path.len();
        if !self.path.is_empty() {
            self.path.push('/');
        }
        self.path.push_str(name);
        self.open.push((start, false));
        self.text.clear();
        Ok(())
    }

    fn close_element(&mut self) -> Result<(), ParseError> {
        let Some((start, has_children)) = self.open.pop() else {
            return Err(ParseError::Malformed(0));
        };
        if self.open.is_empty() {
            self.root_closed = true;
        } else if !has_children {
            if self.fields.len() >= MAX_FIELDS {
                return Err(ParseError::TooManyFields);
            }
            self.fields
                .push((self.path.clone(), std::mem::take(&mut self.text)));
        }
        self.path.truncate(start);
        self.text.clear();
        Ok(())
    }

    fn push_text(&mut self, text: &str, position: u64) -> Result<(), ParseError> {
        if self.inside_root() {
            self.text.push_str(text);
            Ok(())
        } else if text.trim().is_empty() {
            Ok(())
        } else {
            Err(ParseError::Malformed(position))
        }
    }
}

/// Names the refusal precisely where it matters: an ENTITY declaration outside a DOCTYPE is a
/// syntax error to quick-xml, but to the client it is the same forbidden construct.
fn classify(error: &XmlError, xml: &str, position: u64) -> ParseError {
    let at = usize::try_from(position).unwrap_or(usize::MAX);
    let rest = xml.as_bytes().get(at..).unwrap_or_default();
    let is_declaration = |keyword: &[u8]| {
        rest.len() >= keyword.len() && rest[..keyword.len()].eq_ignore_ascii_case(keyword)
    };
    match error {
        XmlError::Syntax(SyntaxError::InvalidBangMarkup)
            if is_declaration(b"<!ENTITY") || is_declaration(b"<!DOCTYPE") =>
        {
            ParseError::Declaration
        }
        _ => ParseError::Malformed(position),
    }
}

/// `<name><![CDATA[value]]></name>`, with any `]]>` in the value split across two sections.
pub fn cdata_element(xml: &mut String, name: &str, value: &str) {
    xml.push('<');
    xml.push_str(name);
    xml.push_str("><![CDATA[");
    let mut rest = value;
    while let Some(at) = rest.find("]]>") {
        xml.push_str(&rest[..at]);
        xml.push_str("]]]]><![CDATA[>");
        rest = &rest[at + 3..];
    }
    xml.push_str(rest);
    xml.push_str("]]></");
    xml.push_str(name);
    xml.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_and_repeated_elements_get_slash_paths() {
        let fields = Fields::parse(
            "<xml>\n  <A>\n    <B>1</B>\n    <L><item><V>x</V></item><item><V>y</V></item></L>\n  </A>\n  <Empty/>\n</xml>",
        )
        .unwrap();
        assert_eq!(fields.get("A/B"), Some("1"));
        assert_eq!(fields.get_all("A/L/item/V").collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(fields.get("Empty"), Some(""));
        assert_eq!(fields.get("A"), None);
    }

    #[test]
    fn text_and_cdata_and_references_are_joined_and_decoded() {
        let fields =
            Fields::parse("<xml><C>a &amp; b <![CDATA[<c>]]> &#x1F600;&#10;d</C></xml>").unwrap();
        assert_eq!(fields.get("C"), Some("a & b <c> 😀\nd"));
    }

    #[test]
    fn doctype_and_entity_declarations_are_refused() {
        for xml in [
            "<!DOCTYPE xml [<!ENTITY e \"boom\">]><xml><A>&e;</A></xml>",
            "<!DOCTYPE xml SYSTEM \"file:///etc/passwd\"><xml/>",
            "<!ENTITY e \"boom\"><xml/>",
            "<xml><!ENTITY e \"boom\"></xml>",
            "<xml><!doctype x></xml>",
        ] {
            assert_eq!(Fields::parse(xml), Err(ParseError::Declaration), "{xml}");
        }
    }

    #[test]
    fn processing_instructions_other_than_the_declaration_are_refused() {
        for xml in [
            "<?php echo 1; ?><xml/>",
            "<xml><?xml-stylesheet href=\"a\"?></xml>",
            "<xml/><?xml version=\"1.0\"?>",
        ] {
            assert_eq!(
                Fields::parse(xml),
                Err(ParseError::ProcessingInstruction),
                "{xml}"
            );
        }
    }

    #[test]
    fn unknown_entities_are_refused() {
        assert_eq!(
            Fields::parse("<xml><A>&lol;</A></xml>"),
            Err(ParseError::UnknownEntity)
        );
    }

    #[test]
    fn malformed_documents_are_refused() {
        for xml in [
            "",
            "   ",
            "not xml",
            "<xml>",
            "<xml><A>1</B></xml>",
            "<xml><A>1</A>",
            "<xml></xml><xml></xml>",
            "<xml/>trailing",
            "text<xml/>",
            "<xml><A><![CDATA[unterminated</A></xml>",
            "<xml>a & b</xml>",
            "</xml>",
        ] {
            assert!(
                matches!(Fields::parse(xml), Err(ParseError::Malformed(_))),
                "{xml:?} gave {:?}",
                Fields::parse(xml)
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused_before_it_costs_anything() {
        let deep = format!(
            "<xml>{}{}</xml>",
            "<a>".repeat(10_000),
            "</a>".repeat(10_000)
        );
        assert_eq!(Fields::parse(&deep), Err(ParseError::TooDeep));
    }

    #[test]
    fn too_many_fields_are_refused() {
        let many = format!("<xml>{}</xml>", "<a/>".repeat(MAX_FIELDS + 1));
        assert_eq!(Fields::parse(&many), Err(ParseError::TooManyFields));
    }

    #[test]
    fn error_texts_never_quote_the_input() {
        let err = Fields::parse("<xml><SECRET_NAME>1</OTHER_NAME></xml>").unwrap_err();
        assert!(!err.to_string().contains("SECRET_NAME"));
    }
}
