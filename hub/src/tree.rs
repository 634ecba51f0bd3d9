//! The files of one app at one commit, as read from Git and handed to a
//! renderer, and the limits that keep a hostile repository (a "git bomb")
//! from exhausting the hub.

/// One regular file under an app's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    /// Path relative to the app's path, `/`-separated, never starting with
    /// `/` and never containing `..`.
    pub path: String,
    pub data: Vec<u8>,
    /// Whether Git marks the file executable (plugins may need it).
    pub executable: bool,
}

/// Bounds on what one app may read from Git and render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeLimits {
    /// Largest single file.
    pub max_file_bytes: u64,
    /// Most files under an app's path.
    pub max_files: usize,
    /// Most bytes under an app's path, all files together.
    pub max_total_bytes: u64,
    /// Most bytes of rendered output (JSON) for one app.
    pub max_rendered_bytes: u64,
}

impl Default for TreeLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 4 * 1024 * 1024,
            max_files: 10_000,
            max_total_bytes: 64 * 1024 * 1024,
            max_rendered_bytes: 32 * 1024 * 1024,
        }
    }
}
