//! What the hub sends a render worker on its stdin and reads back from its stdout: pure codecs, no I/O of their own.
//!
//! Request: a 4-byte big-endian length, a JSON header of that length (the
//! renderer, the output limit, and each file's path, length and mode), then
//! the files' bytes one after the other. File contents travel raw: as JSON
//! numbers a 64 MiB tree would be four times larger. Reply: one JSON value,
//! the objects or the renderer's error message.

use super::{DirectorySettings, HelmInput, HelmUses, RendererKind, RepoContext};
use crate::tree::TreeFile;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::{Read, Write};

/// Largest request header a worker accepts: paths of the 10,000 files a
/// tree may hold fit many times over.
const MAX_HEADER_BYTES: u32 = 16 * 1024 * 1024;

/// Longest error message a worker sends back; the rest is cut.
pub(super) const MAX_ERROR_BYTES: usize = 16 * 1024;

/// Why a request or reply could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("reading or writing the render pipe")]
    Io(#[from] std::io::Error),
    #[error("render request header of {0} bytes is larger than allowed")]
    HeaderTooLarge(u32),
    #[error("malformed render message")]
    Json(#[from] serde_json::Error),
}

/// One render, as the worker needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub kind: RendererKind,
    /// Most bytes of rendered objects (as JSON) the renderer may return.
    pub max_rendered_bytes: u64,
    /// Values, release and seed of a Helm render.
    pub helm: Option<HelmInput>,
    /// File selection and jsonnet arguments of directory and jsonnet apps.
    pub directory: DirectorySettings,
    /// The app's files, paths relative to the app.
    pub files: Vec<TreeFile>,
    /// The app's place in its repository and the files outside it the
    /// render may read.
    pub repo: RepoContext,
}

#[derive(Serialize, Deserialize)]
struct Header {
    kind: RendererKind,
    max_rendered_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    helm: Option<HelmInput>,
    #[serde(default, skip_serializing_if = "DirectorySettings::is_default")]
    directory: DirectorySettings,
    files: Vec<FileHeader>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    app_path: String,
    /// Sent after `files`, in this order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    repo_files: Vec<FileHeader>,
}

#[derive(Serialize, Deserialize)]
struct FileHeader {
    path: String,
    len: u64,
    executable: bool,
}

/// What a worker answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reply {
    Objects(Vec<Value>),
    /// A Helm render's objects, and which cluster inputs the chart reached.
    Helm {
        objects: Vec<Value>,
        uses: HelmUses,
    },
    /// The renderer's own error (bad YAML, a failing plugin…), already
    /// worded for the user.
    Error(String),
}

/// Write `request` to `out`.
pub fn write_request(out: &mut impl Write, request: &Request) -> Result<(), WireError> {
    let header = Header {
        kind: request.kind.clone(),
        max_rendered_bytes: request.max_rendered_bytes,
        helm: request.helm.clone(),
        directory: request.directory.clone(),
        files: file_headers(&request.files),
        app_path: request.repo.app_path.clone(),
        repo_files: file_headers(&request.repo.files),
    };
    let header = serde_json::to_vec(&header)?;
    let len = u32::try_from(header.len())
        .ok()
        .filter(|&l| l <= MAX_HEADER_BYTES)
        .ok_or(WireError::HeaderTooLarge(u32::MAX))?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(&header)?;
    for f in request.files.iter().chain(&request.repo.files) {
        out.write_all(&f.data)?;
    }
    out.flush()?;
    Ok(())
}

fn file_headers(files: &[TreeFile]) -> Vec<FileHeader> {
    files
        .iter()
        .map(|f| FileHeader {
            path: f.path.clone(),
            len: f.data.len() as u64,
            executable: f.executable,
        })
        .collect()
}

/// The files `headers` announce, read from `input` one after the other.
fn read_files(input: &mut impl Read, headers: Vec<FileHeader>) -> Result<Vec<TreeFile>, WireError> {
    let mut files = Vec::with_capacity(headers.len());
    for f in headers {
        let mut data = Vec::new();
        (&mut *input).take(f.len).read_to_end(&mut data)?;
        if data.len() as u64 != f.len {
            return Err(WireError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        files.push(TreeFile {
            path: f.path,
            data,
            executable: f.executable,
        });
    }
    Ok(files)
}

/// Read a request from `input`. A length that does not match what follows
/// is an error, never a hang: the pipe's end is the request's end.
pub fn read_request(input: &mut impl Read) -> Result<Request, WireError> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len);
    if len > MAX_HEADER_BYTES {
        return Err(WireError::HeaderTooLarge(len));
    }
    let mut header = vec![0u8; len as usize];
    input.read_exact(&mut header)?;
    let header: Header = serde_json::from_slice(&header)?;
    let files = read_files(input, header.files)?;
    let repo_files = read_files(input, header.repo_files)?;
    Ok(Request {
        kind: header.kind,
        max_rendered_bytes: header.max_rendered_bytes,
        helm: header.helm,
        directory: header.directory,
        files,
        repo: RepoContext {
            app_path: header.app_path,
            files: repo_files,
        },
    })
}

/// `message`, cut to [`MAX_ERROR_BYTES`] on a character boundary.
pub(super) fn bounded_message(message: String) -> String {
    if message.len() <= MAX_ERROR_BYTES {
        return message;
    }
    let mut end = MAX_ERROR_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request {
            kind: RendererKind::Plugin {
                command: "render --flag".into(),
            },
            max_rendered_bytes: 1234,
            helm: None,
            directory: DirectorySettings {
                recurse: Some(false),
                include: vec!["*.yaml".into()],
                ..DirectorySettings::default()
            },
            repo: RepoContext {
                app_path: "apps/web".into(),
                files: vec![TreeFile {
                    path: "base/kustomization.yaml".into(),
                    data: b"resources: []\n".to_vec(),
                    executable: false,
                }],
            },
            files: vec![
                TreeFile {
                    path: "a/b.yaml".into(),
                    data: b"kind: x\n".to_vec(),
                    executable: false,
                },
                TreeFile {
                    path: "bin/tool".into(),
                    data: vec![0, 159, 146, 150, 255],
                    executable: true,
                },
                TreeFile {
                    path: "empty".into(),
                    data: Vec::new(),
                    executable: false,
                },
            ],
        }
    }

    #[test]
    fn a_request_round_trips_with_binary_contents() {
        let mut buf = Vec::new();
        write_request(&mut buf, &request()).unwrap();
        assert_eq!(read_request(&mut buf.as_slice()).unwrap(), request());
    }

    #[test]
    fn a_truncated_or_oversized_request_is_an_error() {
        let mut buf = Vec::new();
        write_request(&mut buf, &request()).unwrap();
        for cut in [0, 3, 10, buf.len() - 1] {
            assert!(read_request(&mut &buf[..cut]).is_err(), "cut at {cut}");
        }
        let huge = (MAX_HEADER_BYTES + 1).to_be_bytes();
        assert!(matches!(
            read_request(&mut huge.as_slice()),
            Err(WireError::HeaderTooLarge(_))
        ));
    }

    #[test]
    fn replies_are_plain_json() {
        let reply = Reply::Error("x.yaml:3:1: bad".into());
        let text = serde_json::to_string(&reply).unwrap();
        assert_eq!(text, r#"{"error":"x.yaml:3:1: bad"}"#);
        assert_eq!(serde_json::from_str::<Reply>(&text).unwrap(), reply);
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_ERROR_BYTES);
        let cut = bounded_message(long);
        assert!(cut.len() <= MAX_ERROR_BYTES + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        assert_eq!(bounded_message("short".into()), "short");
    }
}
