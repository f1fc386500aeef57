//! The `--state FILE`: the whole world (accounts and their data, registered clients, token
//! hashes) plus the clock offset, as JSON. Loaded at start when present; written on graceful
//! shutdown and on admin request (to a temporary file, then renamed into place).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::clock::Millis;
use super::errors::SandboxError;
use super::state::World;

const FORMAT_VERSION: u32 = 1;

#[derive(Serialize)]
struct StateRef<'a> {
    version: u32,
    clock_offset_ms: Millis,
    world: &'a World,
}

#[derive(Deserialize)]
struct StateOwned {
    version: u32,
    clock_offset_ms: Millis,
    world: World,
}

/// Reads a state file; `Ok(None)` when it does not exist yet.
pub(crate) fn load(path: &Path) -> Result<Option<(World, Millis)>, SandboxError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SandboxError::StateRead {
                path: path.to_owned(),
                source,
            });
        }
    };
    let state: StateOwned = serde_json::from_reader(BufReader::new(file)).map_err(|source| {
        SandboxError::StateParse {
            path: path.to_owned(),
            source,
        }
    })?;
    if state.version != FORMAT_VERSION {
        return Err(SandboxError::StateParse {
            path: path.to_owned(),
            source: serde::de::Error::custom(format!(
                "unsupported state format version {}",
                state.version
            )),
        });
    }
    let mut world = state.world;
    for account in &mut world.accounts {
        account.rebuild_indexes();
    }
    Ok(Some((world, state.clock_offset_ms)))
}

/// Writes the state file atomically (temporary file + rename).
pub(crate) fn save(
    path: &Path,
    world: &World,
    clock_offset_ms: Millis,
) -> Result<(), SandboxError> {
    let write_err = |source| SandboxError::StateWrite {
        path: path.to_owned(),
        source,
    };
    let temp = path.with_extension("tmp");
    // 0600: the state holds the sandbox's client secret and tokens.
    let file = {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)
            .map_err(write_err)?
    };
    let mut writer = BufWriter::new(file);
    serde_json::to_writer(
        &mut writer,
        &StateRef {
            version: FORMAT_VERSION,
            clock_offset_ms,
            world,
        },
    )
    .map_err(|e| write_err(std::io::Error::other(e)))?;
    writer.flush().map_err(write_err)?;
    writer
        .into_inner()
        .map_err(|e| write_err(e.into_error()))?
        .sync_all()
        .map_err(write_err)?;
    std::fs::rename(&temp, path).map_err(write_err)?;
    Ok(())
}
