//! Messages WeChat pushes to the webhook: the typed [`Message`] built from a body's fields
//! (read by [`crate::xml`]), and the one vocabulary of message types ([`MsgType`]) and events
//! ([`EventType`]) that the parser, the reply rules and logs share.
//!
//! Every field stays available in [`Message::fields`], so kinds WeChat adds later are kept
//! (`Unknown`) rather than rejected. Of an authenticated push only the envelope is required: a
//! known type whose details are missing or malformed keeps its type and fields and falls back to
//! the raw form ([`Message::detail_error`] says why), so WeChat is never refused.

use std::str::FromStr;

use crate::xml::{Fields, ParseError};

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

    #[test]
    fn an_xml_declaration_and_comments_are_accepted() {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- hi -->{TEXT}\n<!-- bye -->\n"
        );
        assert!(Message::parse(xml.as_bytes()).is_ok());
    }
}
