//! One tar header as both readers (the scanner and the tar-input builder) need it: GNU long names
//! and pax records already applied, path in canonical form.

use std::io::Read;
use std::path::Path;

use tar::EntryType;

use super::{path, LayerError};

pub(crate) struct RawHeader {
    /// Canonical path; `None` for the root directory (`./`).
    pub path: Option<String>,
    pub entry_type: EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: String,
    pub gname: String,
    pub size: u64,
    pub mtime: u64,
    pub link_target: Option<String>,
    pub device: (u32, u32),
    /// Where the entry's data starts in the tar stream.
    pub data_offset: u64,
}

/// Read the header of `entry`. Non-UTF-8 names are refused unless `lossy` (analysis only).
pub(crate) fn read_header<R: Read>(
    entry: &mut tar::Entry<R>,
    lossy: bool,
) -> Result<RawHeader, LayerError> {
    let raw_path = text(&entry.path().map_err(LayerError::Read)?, lossy)?;
    let path = path::normalize(&raw_path)?;
    let link_target = match entry.link_name().map_err(LayerError::Read)? {
        Some(target) => Some(text(&target, lossy)?),
        None => None,
    };
    let header = entry.header();
    let read = LayerError::Read;
    let mut raw = RawHeader {
        path,
        entry_type: header.entry_type(),
        mode: header.mode().map_err(read)? & 0o7777,
        uid: header.uid().map_err(read)?,
        gid: header.gid().map_err(read)?,
        uname: name_field(header.username_bytes()),
        gname: name_field(header.groupname_bytes()),
        size: entry.size(),
        mtime: header.mtime().map_err(read)?,
        link_target,
        device: (
            header.device_major().ok().flatten().unwrap_or(0),
            header.device_minor().ok().flatten().unwrap_or(0),
        ),
        data_offset: entry.raw_file_position(),
    };
    apply_pax(entry, &mut raw)?;
    Ok(raw)
}

fn text(p: &Path, lossy: bool) -> Result<String, LayerError> {
    match p.to_str() {
        Some(s) => Ok(s.to_string()),
        None if lossy => Ok(p.to_string_lossy().into_owned()),
        None => Err(LayerError::NonUtf8Path {
            path: p.to_path_buf(),
        }),
    }
}

fn name_field(bytes: Option<&[u8]>) -> String {
    bytes
        .map(String::from_utf8_lossy)
        .unwrap_or_default()
        .into_owned()
}

/// pax records override the octal header fields (large ids, sub-second or far-future mtimes).
fn apply_pax<R: Read>(entry: &mut tar::Entry<R>, raw: &mut RawHeader) -> Result<(), LayerError> {
    let Some(records) = entry.pax_extensions().map_err(LayerError::Read)? else {
        return Ok(());
    };
    for record in records {
        let record = record.map_err(LayerError::Read)?;
        let (Ok(key), Ok(value)) = (record.key(), record.value()) else {
            continue;
        };
        let number = || value.split('.').next().and_then(|v| v.parse::<u64>().ok());
        match key {
            "uid" => raw.uid = number().unwrap_or(raw.uid),
            "gid" => raw.gid = number().unwrap_or(raw.gid),
            "mtime" => raw.mtime = number().unwrap_or(raw.mtime),
            "uname" => raw.uname = value.to_string(),
            "gname" => raw.gname = value.to_string(),
            _ => {}
        }
    }
    Ok(())
}
