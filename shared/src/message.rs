//! Messages WeChat pushes to the webhook: a hostile-input-safe streaming XML reader that turns a
//! body into flat fields (element path → text), and the typed [`Message`] built from them.
//!
//! The reader refuses DOCTYPE and ENTITY declarations, processing instructions, unknown entity
//! references, deep nesting and absurd field counts, so that nothing an attacker sends can make
//! it expand, recurse or allocate without bound. Every field stays available in
//! [`Message::fields`], so kinds WeChat adds later are kept (`Unknown`) rather than rejected.
//!
//! Also the one vocabulary of message types ([`MsgType`]) and events ([`EventType`]) that the
//! parser, the reply rules and logs share. Of an authenticated push only the envelope is
//! required: a known type whose details are missing or malformed keeps its type and fields and
//! falls back to the raw form ([`Message::detail_error`] says why), so WeChat is never refused.

use std::str::FromStr;

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

/// Declares a closed vocabulary of WeChat names: the enum, its wire spelling, the list of all
/// names, and lookup ignoring ASCII case (WeChat mixes `SCAN` and `subscribe`).
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every name, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The name as WeChat spells it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)+
                }
            }

            /// The name `raw` stands for, ignoring ASCII case and surrounding spaces.
            pub fn from_wire(raw: &str) -> Option<Self> {
                let raw = raw.trim();
                Self::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(raw))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// The `MsgType`s this code knows: what users send, and `event`.
    MsgType {
        Text = "text",
        Image = "image",
        Voice = "voice",
        Video = "video",
        ShortVideo = "shortvideo",
        Location = "location",
        Link = "link",
        Event = "event",
    }
}

vocabulary! {
    /// The `Event`s this code knows (`MsgType` `event`).
    EventType {
        Subscribe = "subscribe",
        Unsubscribe = "unsubscribe",
        Scan = "SCAN",
        Location = "LOCATION",
        Click = "CLICK",
        View = "VIEW",
        ScanCodePush = "scancode_push",
        ScanCodeWaitMsg = "scancode_waitmsg",
        PicSysPhoto = "pic_sysphoto",
        PicPhotoOrAlbum = "pic_photo_or_album",
        PicWeixin = "pic_weixin",
        LocationSelect = "location_select",
        ViewMiniprogram = "view_miniprogram",
        TemplateSendJobFinish = "TEMPLATESENDJOBFINISH",
        MassSendJobFinish = "MASSSENDJOBFINISH",
    }
}

/// A message or event pushed by WeChat: the envelope, the typed kind, and every raw field.
///
/// Only the envelope (`ToUserName`, `FromUserName`, `CreateTime`, `MsgType`, and `Event` for
/// events) is required. When the details of a known type are missing or unreadable, `kind` falls
/// back to the raw form ([`MessageKind::Unknown`] or [`Event::Unknown`]) and `detail_error` says
/// why; `known_type`, `known_event` and `fields` still describe the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The official account's original ID (`gh_…`).
    pub to_user_name: String,
    /// The sender's OpenID.
    pub from_user_name: String,
    pub create_time: i64,
    /// `MsgType` as sent.
    pub msg_type: String,
    /// `MsgType` in this code's vocabulary; `None` for a type it does not know.
    pub known_type: Option<MsgType>,
    /// `Event` in this code's vocabulary; `None` for other messages and unknown events.
    pub known_event: Option<EventType>,
    /// `MsgId` of user messages, or `MsgID` of the job-finished events.
    pub msg_id: Option<String>,
    pub kind: MessageKind,
    /// Why the details of a known type could not be read, when `kind` fell back to the raw form.
    pub detail_error: Option<ParseError>,
    pub fields: Fields,
}

/// What a user sent. Unknown message types are kept with their raw fields.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageKind {
    Text {
        content: String,
    },
    Image {
        pic_url: String,
        media_id: String,
    },
    Voice {
        media_id: String,
        format: String,
        /// Speech recognition result, when the account has it enabled.
        recognition: Option<String>,
    },
    Video {
        media_id: String,
        thumb_media_id: String,
    },
    ShortVideo {
        media_id: String,
        thumb_media_id: String,
    },
    Location {
        /// `Location_X`.
        latitude: f64,
        /// `Location_Y`.
        longitude: f64,
        scale: u32,
        label: String,
    },
    Link {
        title: String,
        description: String,
        url: String,
    },
    Event(Event),
    /// A message type this code does not know, or a known one whose details could not be read
    /// (see [`Message::detail_error`]); see [`Message::fields`].
    Unknown,
}

/// An event pushed by WeChat (`MsgType` `event`). Unknown events are kept with their name.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A follow. `scene` is set for a scan-subscribe (EventKey `qrscene_<scene>`).
    Subscribe {
        scene: Option<String>,
        ticket: Option<String>,
    },
    Unsubscribe,
    /// A follower scanned a parameterised QR code.
    Scan {
        scene: String,
        ticket: Option<String>,
    },
    Location {
        latitude: f64,
        longitude: f64,
        precision: f64,
    },
    Click {
        key: String,
    },
    View {
        url: String,
        menu_id: Option<String>,
    },
    ScanCodePush {
        key: String,
        scan: ScanCodeInfo,
    },
    ScanCodeWaitMsg {
        key: String,
        scan: ScanCodeInfo,
    },
    PicSysPhoto {
        key: String,
        pictures: SendPicsInfo,
    },
    PicPhotoOrAlbum {
        key: String,
        pictures: SendPicsInfo,
    },
    PicWeixin {
        key: String,
        pictures: SendPicsInfo,
    },
    LocationSelect {
        key: String,
        location: SendLocationInfo,
    },
    ViewMiniprogram {
        page_path: String,
        menu_id: Option<String>,
    },
    TemplateSendJobFinish {
        status: String,
    },
    /// Counts of a mass send; the copyright-check and article-URL lists stay in the raw fields.
    MassSendJobFinish {
        status: String,
        total_count: u64,
        filter_count: u64,
        sent_count: u64,
        error_count: u64,
    },
    /// An event this code does not know, or a known one whose details could not be read.
    Unknown {
        name: String,
    },
}

/// `ScanCodeInfo` of the scancode menu events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanCodeInfo {
    pub scan_type: String,
    pub scan_result: String,
}

/// `SendPicsInfo` of the picture menu events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendPicsInfo {
    pub count: u32,
    pub pic_md5_sums: Vec<String>,
}

/// `SendLocationInfo` of the `location_select` menu event.
#[derive(Debug, Clone, PartialEq)]
pub struct SendLocationInfo {
    pub latitude: f64,
    pub longitude: f64,
    pub scale: u32,
    pub label: String,
    pub poiname: String,
}

impl Message {
    /// Parses a UTF-8 body; see [`Fields::parse`] for what is refused.
    pub fn parse(body: &[u8]) -> Result<Self, ParseError> {
        let xml = std::str::from_utf8(body).map_err(|_| ParseError::NotUtf8)?;
        Self::from_fields(Fields::parse(xml)?)
    }

    /// Builds the typed message from fields. Only the envelope is required; details that are
    /// missing or unreadable leave the raw form with [`Message::detail_error`] set.
    pub fn from_fields(fields: Fields) -> Result<Self, ParseError> {
        let to_user_name = required(&fields, "ToUserName")?;
        let from_user_name = required(&fields, "FromUserName")?;
        let create_time = number(&fields, "CreateTime")?;
        let msg_type = required(&fields, "MsgType")?;
        let known_type = MsgType::from_wire(&msg_type);
        let event_name = match known_type {
            Some(MsgType::Event) => Some(required(&fields, "Event")?),
            _ => None,
        };
        let known_event = event_name.as_deref().and_then(EventType::from_wire);
        let msg_id = optional(&fields, "MsgId").or_else(|| optional(&fields, "MsgID"));
        let details = match known_type {
            Some(known) => MessageKind::from_fields(known, &fields),
            None => Ok(MessageKind::Unknown),
        };
        let (kind, detail_error) = match details {
            Ok(kind) => (kind, None),
            Err(error) => {
                let raw = match event_name {
                    Some(name) => MessageKind::Event(Event::Unknown { name }),
                    None => MessageKind::Unknown,
                };
                (raw, Some(error))
            }
        };
        Ok(Self {
            to_user_name,
            from_user_name,
            create_time,
            msg_type,
            known_type,
            known_event,
            msg_id,
            kind,
            detail_error,
            fields,
        })
    }

    /// The raw `Event` name of an event message.
    pub fn event_name(&self) -> Option<&str> {
        match self.known_type {
            Some(MsgType::Event) => self.fields.get("Event"),
            _ => None,
        }
    }

    /// The raw `EventKey`, when present.
    pub fn event_key(&self) -> Option<&str> {
        self.fields.get("EventKey")
    }
}

impl MessageKind {
    /// The typed details of a `msg_type` message, strictly: a detail field that is missing or
    /// does not parse is an error (which [`Message::from_fields`] turns into the raw form).
    pub fn from_fields(msg_type: MsgType, f: &Fields) -> Result<Self, ParseError> {
        let kind = match msg_type {
            MsgType::Text => Self::Text {
                content: detail(f, "Content")?,
            },
            MsgType::Image => Self::Image {
                pic_url: detail(f, "PicUrl")?,
                media_id: detail(f, "MediaId")?,
            },
            MsgType::Voice => Self::Voice {
                media_id: detail(f, "MediaId")?,
                format: detail(f, "Format")?,
                recognition: optional(f, "Recognition"),
            },
            MsgType::Video => Self::Video {
                media_id: detail(f, "MediaId")?,
                thumb_media_id: detail(f, "ThumbMediaId")?,
            },
            MsgType::ShortVideo => Self::ShortVideo {
                media_id: detail(f, "MediaId")?,
                thumb_media_id: detail(f, "ThumbMediaId")?,
            },
            MsgType::Location => Self::Location {
                latitude: number(f, "Location_X")?,
                longitude: number(f, "Location_Y")?,
                scale: number(f, "Scale")?,
                label: detail(f, "Label")?,
            },
            MsgType::Link => Self::Link {
                title: detail(f, "Title")?,
                description: detail(f, "Description")?,
                url: detail(f, "Url")?,
            },
            MsgType::Event => {
                let name = required(f, "Event")?;
                match EventType::from_wire(&name) {
                    Some(event) => Self::Event(Event::from_fields(event, f)?),
                    None => Self::Event(Event::Unknown { name }),
                }
            }
        };
        Ok(kind)
    }
}

impl Event {
    /// The typed details of an `event` push, strictly (see [`MessageKind::from_fields`]).
    pub fn from_fields(event: EventType, f: &Fields) -> Result<Self, ParseError> {
        let key = || detail(f, "EventKey");
        let event = match event {
            EventType::Subscribe => Self::Subscribe {
                scene: optional(f, "EventKey")
                    .and_then(|k| k.strip_prefix("qrscene_").map(str::to_string)),
                ticket: optional(f, "Ticket"),
            },
            EventType::Unsubscribe => Self::Unsubscribe,
            EventType::Scan => Self::Scan {
                scene: key()?,
                ticket: optional(f, "Ticket"),
            },
            EventType::Location => Self::Location {
                latitude: number(f, "Latitude")?,
                longitude: number(f, "Longitude")?,
                precision: number(f, "Precision")?,
            },
            EventType::Click => Self::Click { key: key()? },
            EventType::View => Self::View {
                url: key()?,
                menu_id: optional(f, "MenuId"),
            },
            EventType::ScanCodePush => Self::ScanCodePush {
                key: key()?,
                scan: ScanCodeInfo::from_fields(f)?,
            },
            EventType::ScanCodeWaitMsg => Self::ScanCodeWaitMsg {
                key: key()?,
                scan: ScanCodeInfo::from_fields(f)?,
            },
            EventType::PicSysPhoto => Self::PicSysPhoto {
                key: key()?,
                pictures: SendPicsInfo::from_fields(f)?,
            },
            EventType::PicPhotoOrAlbum => Self::PicPhotoOrAlbum {
                key: key()?,
                pictures: SendPicsInfo::from_fields(f)?,
            },
            EventType::PicWeixin => Self::PicWeixin {
                key: key()?,
                pictures: SendPicsInfo::from_fields(f)?,
            },
            EventType::LocationSelect => Self::LocationSelect {
                key: key()?,
                location: SendLocationInfo::from_fields(f)?,
            },
            EventType::ViewMiniprogram => Self::ViewMiniprogram {
                page_path: key()?,
                menu_id: optional(f, "MenuId"),
            },
            EventType::TemplateSendJobFinish => Self::TemplateSendJobFinish {
                status: detail(f, "Status")?,
            },
            EventType::MassSendJobFinish => Self::MassSendJobFinish {
                status: detail(f, "Status")?,
                total_count: number(f, "TotalCount")?,
                filter_count: number(f, "FilterCount")?,
                sent_count: number(f, "SentCount")?,
                error_count: number(f, "ErrorCount")?,
            },
        };
        Ok(event)
    }
}

impl ScanCodeInfo {
    fn from_fields(f: &Fields) -> Result<Self, ParseError> {
        Ok(Self {
            scan_type: detail(f, "ScanCodeInfo/ScanType")?,
            scan_result: detail(f, "ScanCodeInfo/ScanResult")?,
        })
    }
}

impl SendPicsInfo {
    /// The list may be empty (a user who picked nothing); the count may not be missing.
    fn from_fields(f: &Fields) -> Result<Self, ParseError> {
        Ok(Self {
            count: number(f, "SendPicsInfo/Count")?,
            pic_md5_sums: f
                .get_all("SendPicsInfo/PicList/item/PicMd5Sum")
                .map(str::to_string)
                .collect(),
        })
    }
}

impl SendLocationInfo {
    fn from_fields(f: &Fields) -> Result<Self, ParseError> {
        Ok(Self {
            latitude: number(f, "SendLocationInfo/Location_X")?,
            longitude: number(f, "SendLocationInfo/Location_Y")?,
            scale: number(f, "SendLocationInfo/Scale")?,
            label: detail(f, "SendLocationInfo/Label")?,
            // WeChat sends it empty for a point that is not a named place, and may leave it out.
            poiname: f
                .get("SendLocationInfo/Poiname")
                .unwrap_or_default()
                .to_string(),
        })
    }
}

/// A detail field that must be present; WeChat sends some of them empty (`EventKey` of a plain
/// subscribe), which is kept as the empty string.
fn detail(f: &Fields, path: &'static str) -> Result<String, ParseError> {
    f.get(path)
        .map(str::to_string)
        .ok_or(ParseError::MissingField(path))
}

/// A field that is absent or blank counts as not given.
fn optional(f: &Fields, path: &str) -> Option<String> {
    f.get(path)
        .filter(|v| !v.trim().is_empty())
        .map(str::to_string)
}

fn required(f: &Fields, path: &'static str) -> Result<String, ParseError> {
    optional(f, path).ok_or(ParseError::MissingField(path))
}

fn number<T: FromStr>(f: &Fields, path: &'static str) -> Result<T, ParseError> {
    match f.get(path) {
        None => Err(ParseError::MissingField(path)),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|_| ParseError::InvalidField(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oUser]]></FromUserName><CreateTime>1348831860</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[this is a test]]></Content><MsgId>1234567890123456</MsgId></xml>";

    #[test]
    fn a_text_message_parses_into_header_kind_and_fields() {
        let msg = Message::parse(TEXT.as_bytes()).unwrap();
        assert_eq!(msg.to_user_name, "gh_1");
        assert_eq!(msg.from_user_name, "oUser");
        assert_eq!(msg.create_time, 1348831860);
        assert_eq!(msg.msg_type, "text");
        assert_eq!(msg.msg_id.as_deref(), Some("1234567890123456"));
        assert_eq!(
            msg.kind,
            MessageKind::Text {
                content: "this is a test".into()
            }
        );
        assert_eq!(msg.fields.get("Content"), Some("this is a test"));
        assert_eq!(msg.fields.len(), 6);
    }

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
    fn an_xml_declaration_and_comments_are_accepted() {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- hi -->{TEXT}\n<!-- bye -->\n"
        );
        assert!(Message::parse(xml.as_bytes()).is_ok());
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
    fn each_missing_header_field_is_named() {
        for field in ["ToUserName", "FromUserName", "CreateTime", "MsgType"] {
            let xml = TEXT.replace(field, "Other");
            assert_eq!(
                Message::parse(xml.as_bytes()),
                Err(ParseError::MissingField(field)),
                "{field}"
            );
        }
    }

    #[test]
    fn a_non_numeric_create_time_is_invalid() {
        let xml = TEXT.replace("1348831860", "yesterday");
        assert_eq!(
            Message::parse(xml.as_bytes()),
            Err(ParseError::InvalidField("CreateTime"))
        );
    }

    #[test]
    fn a_known_kind_with_a_non_numeric_coordinate_is_invalid() {
        let xml = "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime><MsgType>location</MsgType><Location_X>north</Location_X><Location_Y>1</Location_Y><Scale>20</Scale><Label/></xml>";
        let fields = Fields::parse(xml).unwrap();
        assert_eq!(
            MessageKind::from_fields(MsgType::Location, &fields),
            Err(ParseError::InvalidField("Location_X"))
        );
    }

    #[test]
    fn a_known_kind_with_unreadable_details_degrades_to_the_raw_form_keeping_type_and_fields() {
        let xml = "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime><MsgType>location</MsgType><Location_X>north</Location_X><Location_Y>1</Location_Y><Scale>20</Scale><Label/></xml>";
        let msg = Message::parse(xml.as_bytes()).unwrap();
        assert_eq!(msg.kind, MessageKind::Unknown);
        assert_eq!(msg.known_type, Some(MsgType::Location));
        assert_eq!(
            msg.detail_error,
            Some(ParseError::InvalidField("Location_X"))
        );
        assert_eq!(msg.fields.get("Location_X"), Some("north"));

        let xml = "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>pic_weixin</Event><EventKey>k</EventKey></xml>";
        let msg = Message::parse(xml.as_bytes()).unwrap();
        assert_eq!(
            msg.kind,
            MessageKind::Event(Event::Unknown {
                name: "pic_weixin".into()
            })
        );
        assert_eq!(msg.known_event, Some(EventType::PicWeixin));
        assert_eq!(
            msg.detail_error,
            Some(ParseError::MissingField("SendPicsInfo/Count"))
        );
        assert_eq!(msg.event_name(), Some("pic_weixin"));
        assert_eq!(msg.event_key(), Some("k"));
    }

    #[test]
    fn an_event_without_its_event_name_is_refused_as_an_envelope_error() {
        let xml = "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType></xml>";
        assert_eq!(
            Message::parse(xml.as_bytes()),
            Err(ParseError::MissingField("Event"))
        );
    }

    #[test]
    fn vocabulary_names_are_matched_ignoring_case_and_spelled_as_wechat_does() {
        assert_eq!(EventType::from_wire(" scan "), Some(EventType::Scan));
        assert_eq!(EventType::Scan.as_str(), "SCAN");
        assert_eq!(MsgType::from_wire("ShortVideo"), Some(MsgType::ShortVideo));
        assert_eq!(MsgType::from_wire("miniprogrampage"), None);
        for event in EventType::ALL {
            assert_eq!(EventType::from_wire(event.as_str()), Some(*event));
        }
        for msg_type in MsgType::ALL {
            assert_eq!(MsgType::from_wire(&msg_type.to_string()), Some(*msg_type));
        }
    }

    #[test]
    fn unknown_types_and_events_are_kept_with_their_fields() {
        let xml = TEXT.replace("[text]", "[miniprogrampage]");
        let msg = Message::parse(xml.as_bytes()).unwrap();
        assert_eq!(msg.kind, MessageKind::Unknown);
        assert_eq!(msg.fields.get("Content"), Some("this is a test"));

        let xml = "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>subscribe_msg_popup_event</Event><X>1</X></xml>";
        let msg = Message::parse(xml.as_bytes()).unwrap();
        assert_eq!(
            msg.kind,
            MessageKind::Event(Event::Unknown {
                name: "subscribe_msg_popup_event".into()
            })
        );
        assert_eq!(msg.event_name(), Some("subscribe_msg_popup_event"));
        assert_eq!(msg.fields.get("X"), Some("1"));
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert_eq!(Message::parse(b"<xml>\xff</xml>"), Err(ParseError::NotUtf8));
    }

    #[test]
    fn error_texts_never_quote_the_input() {
        let err = Fields::parse("<xml><SECRET_NAME>1</OTHER_NAME></xml>").unwrap_err();
        assert!(!err.to_string().contains("SECRET_NAME"));
    }

    /// Every prefix and many single-byte mutations of real messages must give a result, never a
    /// panic; the cheap stand-in for a fuzzer that the brief asks for.
    #[test]
    fn truncated_and_mutated_inputs_never_panic() {
        let samples = [
            TEXT,
            "<?xml version=\"1.0\"?><xml><A><B><![CDATA[x]]></B><C>&amp;&#x41;</C></A><!-- c --></xml>",
        ];
        let replacements = [
            b'<', b'>', b'&', b'/', b'!', b'?', b'[', b']', b';', b'#', 0xff, 0,
        ];
        for sample in samples {
            let bytes = sample.as_bytes();
            for end in 0..=bytes.len() {
                let _ = Message::parse(&bytes[..end]);
            }
            for i in 0..bytes.len() {
                for &r in &replacements {
                    let mut mutated = bytes.to_vec();
                    mutated[i] = r;
                    let _ = Message::parse(&mutated);
                    mutated.remove(i);
                    let _ = Message::parse(&mutated);
                }
            }
        }
    }
}
