//! A Helm chart repository on loopback: chart archives packed with `tar`
//! and an `index.yaml` listing them with their sha256 digests, served as
//! static files by lighttpd over HTTPS (a private CA) behind basic auth.
//!
//! The server is killed on drop and every wait is bounded. It needs `tar`
//! and `lighttpd` with its openssl module (deps.txt).

use std::path::PathBuf;
use std::process::Command;

use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

use crate::git_server::require;
use crate::lighttpd;
use crate::process::Process;

/// One listed chart version.
struct Listed {
    name: String,
    version: String,
    digest: String,
    file: String,
}

/// The repository's files and the server in front of them.
pub struct ChartRepoServer {
    process: Process,
    port: u16,
    dir: TempDir,
    listed: Vec<Listed>,
}

impl ChartRepoServer {
    /// Serve an empty repository at `https://127.0.0.1:PORT/charts/`,
    /// where every request needs `user` and `password`.
    pub fn start(user: &str, password: &str) -> ChartRepoServer {
        let dir = tempfile::tempdir().expect("chart server dir");
        let root = dir.path().join("www");
        std::fs::create_dir_all(root.join("charts")).expect("charts dir");
        let tls = lighttpd::prepare_tls(dir.path());
        let users = dir.path().join("users");
        std::fs::write(&users, format!("{user}:{password}\n")).expect("user file");

        let (process, port) = lighttpd::start(dir.path(), |port, attempt| {
            format!(
                r#"
server.modules = ("mod_auth", "mod_authn_file", "mod_openssl")
server.document-root = "{root}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{dir}/error-{attempt}.log"
mimetype.assign = ( ".yaml" => "application/x-yaml", ".tgz" => "application/gzip" )
ssl.engine = "enable"
ssl.pemfile = "{tls}/server.pem"
ssl.privkey = "{tls}/server-key.pem"
auth.backend = "plain"
auth.backend.plain.userfile = "{users}"
auth.require = ( "/charts/" => ( "method" => "basic", "realm" => "charts", "require" => "valid-user" ) )
"#,
                root = root.display(),
                dir = dir.path().display(),
                tls = tls.display(),
                users = users.display(),
            )
        });
        let server = ChartRepoServer {
            process,
            port,
            dir,
            listed: Vec::new(),
        };
        server.write_index();
        server
    }

    /// `https://127.0.0.1:PORT/charts`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}/charts", self.port)
    }

    /// The PEM of the CA that signed the server's certificate.
    pub fn ca_pem_path(&self) -> PathBuf {
        self.dir.path().join("tls").join("ca.pem")
    }

    fn charts_dir(&self) -> PathBuf {
        self.dir.path().join("www").join("charts")
    }

    /// Pack chart `name` at `version` with these templates, as `helm
    /// package` would lay it out; returns the archive's bytes.
    pub fn pack(&self, name: &str, version: &str, files: &[(&str, &str)]) -> Vec<u8> {
        pack_chart(name, version, files)
    }

    /// Publish a chart version: its archive, and the index listing it.
    pub fn publish(&mut self, name: &str, version: &str, files: &[(&str, &str)]) -> String {
        let data = self.pack(name, version, files);
        self.publish_archive(name, version, &data, &data)
    }

    /// Publish an archive whose bytes are not those the index's digest is
    /// of (`listed` is what the index vouches for, `served` what is
    /// downloaded): a tampered archive.
    pub fn publish_archive(
        &mut self,
        name: &str,
        version: &str,
        listed: &[u8],
        served: &[u8],
    ) -> String {
        let file = format!("{name}-{version}.tgz");
        std::fs::write(self.charts_dir().join(&file), served).expect("write archive");
        let digest = hex::encode(Sha256::digest(listed));
        self.listed.push(Listed {
            name: name.to_owned(),
            version: version.to_owned(),
            digest: digest.clone(),
            file,
        });
        self.write_index();
        digest
    }

    fn write_index(&self) {
        let mut index = String::from("apiVersion: v1\nentries:\n");
        let mut names: Vec<&str> = self.listed.iter().map(|l| l.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            index.push_str(&format!("  {name}:\n"));
            for l in self.listed.iter().filter(|l| l.name == name) {
                index.push_str(&format!(
                    "  - name: {name}\n    version: {}\n    digest: {}\n    created: \"2026-01-01T00:00:00Z\"\n    urls:\n    - {}\n",
                    l.version, l.digest, l.file
                ));
            }
        }
        index.push_str("generated: \"2026-01-01T00:00:00Z\"\n");
        // Written whole and renamed, so the hub never reads half an index.
        let tmp = self.charts_dir().join(".index.yaml.tmp");
        std::fs::write(&tmp, index).expect("write index");
        std::fs::rename(tmp, self.charts_dir().join("index.yaml")).expect("rename index");
    }

    /// lighttpd's error log and stderr, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = self.process.stderr_text();
        if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with("error-") {
                    out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        out
    }
}

/// Pack chart `name` at `version` with these files (besides its
/// Chart.yaml), as `helm package` lays it out: the archive's bytes.
pub fn pack_chart(name: &str, version: &str, files: &[(&str, &str)]) -> Vec<u8> {
    let work = tempfile::tempdir().expect("pack dir");
    let chart = work.path().join(name);
    std::fs::create_dir_all(chart.join("templates")).expect("chart dir");
    std::fs::write(
        chart.join("Chart.yaml"),
        format!("apiVersion: v2\nname: {name}\nversion: {version}\n"),
    )
    .expect("Chart.yaml");
    for (path, text) in files {
        let p = chart.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("dir");
        std::fs::write(p, text).expect("chart file");
    }
    let archive = work.path().join("chart.tgz");
    let status = Command::new(require("tar", "tar"))
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(work.path())
        .arg(name)
        .status()
        .expect("run tar");
    assert!(status.success(), "tar failed");
    std::fs::read(archive).expect("read archive")
}
