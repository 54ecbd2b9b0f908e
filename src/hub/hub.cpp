#include "hub/hub.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include "pairrm/pairrm.h"

namespace pairrm::hub {
namespace fs = std::filesystem;
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string repo_folder(const std::string& repo) {
  std::string out = "models--";
  for (char c : repo) out += c == '/' ? std::string("--") : std::string(1, c);
  return out;
}

bool is_commit(const std::string& s) { return std::regex_match(s, std::regex("[0-9a-f]{40}")); }

std::string read_small(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

void write_atomic(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  const fs::path tmp = p.string() + ".tmp" + std::to_string(getpid());
  std::ofstream(tmp, std::ios::binary) << text;
  fs::rename(tmp, p);
}

// Hex digest of a file: "sha256", or the git blob id ("sha1" of "blob <size>\0" + content).
std::string file_digest(const fs::path& p, bool git_blob) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, git_blob ? EVP_sha1() : EVP_sha256(), nullptr);
  if (git_blob) {
    const std::string head = "blob " + std::to_string(fs::file_size(p)) + std::string(1, '\0');
    EVP_DigestUpdate(ctx, head.data(), head.size());
  }
  std::ifstream in(p, std::ios::binary);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(in.gcount()));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) out += {hex[md[i] >> 4], hex[md[i] & 15]};
  return out;
}

// ---- HTTP (libcurl) ----

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  ~CurlGlobal() { curl_global_cleanup(); }
};

struct Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names, of the last response
  std::string error;                           // transport error, empty if a response came
};

size_t collect_header(char* data, size_t size, size_t n, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) headers->clear();  // a new response (after a redirect)
  const auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.pop_back();
    (*headers)[lower(line.substr(0, colon))] = value;
  }
  return size * n;
}

class Curl {
 public:
  explicit Curl(const HubOptions& o) : options_(o) {
    static CurlGlobal global;
    h_ = curl_easy_init();
    if (!h_) throw Error("cannot initialise libcurl");
  }
  ~Curl() {
    if (list_) curl_slist_free_all(list_);
    curl_easy_cleanup(h_);
  }

  // HEAD without following redirects: the hub's metadata headers are on its own response.
  Response head(const std::string& url) {
    reset(url, true);
    curl_easy_setopt(h_, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(h_, CURLOPT_FOLLOWLOCATION, 0L);
    return perform();
  }

  // GET into `out` from byte `from` (a Range request when > 0), following redirects.
  Response get(const std::string& url, std::FILE* out, long long from, long long total, const std::string& label,
               bool send_token) {
    reset(url, send_token);
    curl_easy_setopt(h_, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h_, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h_, CURLOPT_WRITEFUNCTION, &Curl::write_body);
    curl_easy_setopt(h_, CURLOPT_WRITEDATA, this);
    if (from > 0) curl_easy_setopt(h_, CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(from));
    out_ = out;
    status_seen_ = 0;
    written_ = from;
    total_ = total;
    label_ = label;
    start_ = std::chrono::steady_clock::now();
    last_draw_ = start_;
    Response r = perform();
    if (bar_) std::fprintf(stderr, "\n");
    bar_ = false;
    return r;
  }

 private:
  void reset(const std::string& url, bool send_token) {
    curl_easy_reset(h_);
    if (list_) curl_slist_free_all(list_);
    list_ = nullptr;
    headers_.clear();
    curl_easy_setopt(h_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h_, CURLOPT_USERAGENT, (std::string("pairrm.cpp/") + version()).c_str());
    curl_easy_setopt(h_, CURLOPT_HEADERFUNCTION, &collect_header);
    curl_easy_setopt(h_, CURLOPT_HEADERDATA, &headers_);
    curl_easy_setopt(h_, CURLOPT_CONNECTTIMEOUT, 30L);
    // A stalled transfer (under 1 KB/s for 60 s) fails and is resumed by the next attempt.
    curl_easy_setopt(h_, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(h_, CURLOPT_LOW_SPEED_TIME, 60L);
    list_ = curl_slist_append(list_, "Accept-Encoding: identity");
    if (send_token && !options_.token.empty())
      list_ = curl_slist_append(list_, ("Authorization: Bearer " + options_.token).c_str());
    curl_easy_setopt(h_, CURLOPT_HTTPHEADER, list_);
  }

  Response perform() {
    Response r;
    const CURLcode rc = curl_easy_perform(h_);
    curl_easy_getinfo(h_, CURLINFO_RESPONSE_CODE, &r.status);
    r.headers = headers_;
    if (rc != CURLE_OK) r.error = curl_easy_strerror(rc);
    return r;
  }

  static size_t write_body(char* data, size_t size, size_t n, void* user) {
    auto* self = static_cast<Curl*>(user);
    long status = 0;
    curl_easy_getinfo(self->h_, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 300) return size * n;  // an error page: not part of the file
    if (std::fwrite(data, size, n, self->out_) != n) return 0;
    self->written_ += static_cast<long long>(size * n);
    self->draw();
    return size * n;
  }

  void draw() {
    if (!options_.progress || !isatty(STDERR_FILENO)) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_draw_ < std::chrono::milliseconds(200) && written_ < total_) return;
    last_draw_ = now;
    bar_ = true;
    const double s = std::max(1e-3, std::chrono::duration<double>(now - start_).count());
    const double rate = static_cast<double>(written_) / s;
    const double frac = total_ > 0 ? std::min(1.0, static_cast<double>(written_) / static_cast<double>(total_)) : 0;
    const int width = 30, filled = static_cast<int>(frac * width);
    const double eta = rate > 0 && total_ > 0 ? static_cast<double>(total_ - written_) / rate : 0;
    std::fprintf(stderr, "\r%-24.24s [%s%s] %5.1f%% %8.1f MB/s ETA %4.0fs", label_.c_str(),
                 std::string(filled, '#').c_str(), std::string(width - filled, ' ').c_str(), 100 * frac, rate / 1e6,
                 eta);
    std::fflush(stderr);
  }

  const HubOptions& options_;
  CURL* h_ = nullptr;
  curl_slist* list_ = nullptr;
  std::map<std::string, std::string> headers_;
  std::FILE* out_ = nullptr;
  long status_seen_ = 0;
  long long written_ = 0, total_ = 0;
  std::string label_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool bar_ = false;
};

bool is_hex_digest(const std::string& e) {
  if (e.size() != 40 && e.size() != 64) return false;
  for (char c : e)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string unquote_etag(std::string e) {
  if (e.rfind("W/", 0) == 0) e = e.substr(2);
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  return e;
}

struct RemoteFile {
  std::string name, etag, url;
  long long size = -1;
  bool lfs = false;
};

HubOptions with_defaults(HubOptions o) {
  if (o.endpoint.empty()) o.endpoint = env("HF_ENDPOINT").empty() ? "https://huggingface.co" : env("HF_ENDPOINT");
  while (!o.endpoint.empty() && o.endpoint.back() == '/') o.endpoint.pop_back();
  if (o.token.empty()) o.token = env("HF_TOKEN");
  if (o.cache.empty()) o.cache = cache_dir();
  return o;
}

std::string missing_list(const fs::path& dir) {
  std::string out;
  for (const auto& f : required_files())
    if (!fs::exists(dir / f)) out += (out.empty() ? "" : ", ") + f;
  return out;
}

// ---- download(), one step at a time ----

bool is_required(const std::string& name) {
  return std::find(required_files().begin(), required_files().end(), name) != required_files().end();
}

// Every file download() looks for: the required ones first, so that a repo lacking one fails before any
// optional file is asked for.
std::vector<std::string> wanted_files() {
  std::vector<std::string> wanted = required_files();
  wanted.insert(wanted.end(), optional_files().begin(), optional_files().end());
  return wanted;
}

// The hub's resolve URL of a file at a revision (a branch, tag or commit: the hub resolves it).
std::string resolve_url(const HubOptions& o, const RepoRef& ref, const std::string& name) {
  return o.endpoint + "/" + ref.repo + "/resolve/" + ref.revision + "/" + name;
}

// Turns a HEAD response that is not metadata into the error the user can act on (no network, a token to set,
// a repo or revision that does not exist). Returns false for an optional file that is absent (HTTP 404), true
// when the response carries the file's metadata.
bool check_head_status(const Response& h, const HubOptions& o, const RepoRef& ref, const std::string& name) {
  if (!h.error.empty() && h.status == 0)
    throw Error("cannot reach " + o.endpoint + " (" + h.error + "); set HF_HUB_OFFLINE=1 to use the cache only");
  if (h.status == 401 || h.status == 403)
    throw Error(ref.repo + ": access denied (HTTP " + std::to_string(h.status) + "): the repo is gated or private; "
                "set HF_TOKEN or pass --token" + (o.token.empty() ? "" : " (the token given was refused)"));
  if (h.status == 404) {
    // The hub says which of repo, revision or file is missing; only the last one can be fine.
    auto code = h.headers.find("x-error-code");
    if (code != h.headers.end() && code->second == "RepoNotFound")
      throw Error(ref.repo + ": repository not found (a private repo needs HF_TOKEN or --token)");
    if (code != h.headers.end() && code->second == "RevisionNotFound")
      throw Error(ref.repo + ": no revision '" + ref.revision + "'");
    if (is_required(name)) throw Error(ref.repo + "@" + ref.revision + ": no " + name + " in the repo (HTTP 404)");
    return false;
  }
  if (h.status >= 400 || h.status == 0) throw Error(ref.repo + ": " + name + ": HTTP " + std::to_string(h.status));
  return true;
}

// A file's blob name, size and download location from the hub's metadata headers. LFS files carry theirs in
// x-linked-* headers (the plain ones describe the redirect), the others in ETag and Content-Length.
RemoteFile remote_file_from_head(const Response& h, const HubOptions& o, const RepoRef& ref, const std::string& name,
                                 const std::string& url) {
  auto header = [&](const char* k) {
    auto it = h.headers.find(k);
    return it == h.headers.end() ? std::string() : it->second;
  };
  RemoteFile f;
  f.name = name;
  const std::string linked = unquote_etag(header("x-linked-etag"));
  f.lfs = !linked.empty();
  f.etag = f.lfs ? linked : unquote_etag(header("etag"));
  // The ETag names the blob and is the only checksum the hub gives: sha256 (64 hex) for LFS files, the git
  // blob id (40 hex) for the others. Anything else could not be verified, so it is refused rather than
  // trusted (a proxy that rewrites ETags would otherwise let a corrupted file through unnoticed).
  if (!is_hex_digest(f.etag))
    throw Error(ref.repo + ": " + name + ": the hub sent ETag '" + f.etag.substr(0, 80) +
                "', which is not a sha256 or git-sha1 digest: the download could not be verified, refusing it");
  const std::string size = f.lfs ? header("x-linked-size") : header("content-length");
  if (!size.empty()) f.size = std::atoll(size.c_str());
  // A redirected file (an LFS file on the CDN, a renamed repo) is fetched from where the hub points: HEAD does
  // not follow redirects, so that the headers read above are the hub's own.
  f.url = h.status >= 300 && h.status < 400 && !header("location").empty() ? header("location") : url;
  if (f.url.rfind("/", 0) == 0) f.url = o.endpoint + f.url;  // a relative redirect
  return f;
}

// Every file's answer names the commit the revision resolved to. They must all agree: a branch that moves
// between two HEADs would otherwise give a snapshot mixing two commits.
void record_commit(const Response& h, const RepoRef& ref, std::string& commit) {
  auto it = h.headers.find("x-repo-commit");
  if (it == h.headers.end() || it->second.empty()) return;
  if (!commit.empty() && it->second != commit)
    throw Error(ref.repo + ": the revision moved during the download; retry");
  commit = it->second;
}

struct RevisionMetadata {
  std::string commit;            // the commit the revision resolved to
  std::vector<RemoteFile> files;  // the wanted files the repo has
};

// Step 1: a HEAD on every wanted file, before anything is downloaded, so that auth, missing files and
// unverifiable ETags fail fast and the whole revision is pinned to one commit.
RevisionMetadata fetch_metadata(Curl& curl, const HubOptions& o, const RepoRef& ref) {
  RevisionMetadata meta;
  for (const std::string& name : wanted_files()) {
    const std::string url = resolve_url(o, ref, name);
    const Response h = curl.head(url);
    if (!check_head_status(h, o, ref, name)) continue;
    RemoteFile f = remote_file_from_head(h, o, ref, name, url);
    record_commit(h, ref, meta.commit);
    meta.files.push_back(std::move(f));
  }
  if (meta.commit.empty()) {
    // A hub that does not say: only a revision that is already a commit can name the snapshot.
    if (!is_commit(ref.revision)) throw Error(ref.repo + ": the hub did not say which commit '" + ref.revision + "' is");
    meta.commit = ref.revision;
  }
  return meta;
}

// One GET of a file into `part`, resuming what an earlier attempt (or an earlier run) left there. True once
// `part` holds the whole file; false with `last_error` set when the next attempt should try again. Throws
// when retrying cannot help (access denied, an unwritable cache).
bool transfer_attempt(Curl& curl, const HubOptions& o, const RepoRef& ref, const RemoteFile& f, const fs::path& part,
                      std::string& last_error) {
  long long have = fs::exists(part) ? static_cast<long long>(fs::file_size(part)) : 0;
  if (f.size >= 0 && have > f.size) {  // longer than the file: start over
    fs::remove(part);
    have = 0;
  }
  std::FILE* out = std::fopen(part.c_str(), have > 0 ? "ab" : "wb");
  if (!out) throw Error("cannot write " + part.string());
  // The token goes to the hub only, never to the CDN a file is redirected to.
  const bool same_host = f.url.rfind(o.endpoint, 0) == 0;
  const Response r = curl.get(f.url, out, have, f.size, f.name, same_host);
  std::fclose(out);
  bool done = false;
  if (r.status == 416 && f.size >= 0 && have == f.size) {
    done = true;  // already complete
  } else if (r.status == 200 && have > 0) {
    // The server ignored the Range: it sent the whole file after what we had. Start over.
    fs::remove(part);
    last_error = "the server does not support resuming";
  } else if (r.status == 401 || r.status == 403) {
    throw Error(ref.repo + ": " + f.name + ": access denied (HTTP " + std::to_string(r.status) + "); set HF_TOKEN");
  } else if (r.status >= 400) {
    last_error = "HTTP " + std::to_string(r.status);
  } else if (!r.error.empty()) {
    last_error = r.error;  // cut or stalled: the next attempt resumes
  } else {
    done = true;
  }
  // A transfer that ended cleanly with the wrong length (a proxy that closed early) is tried again: resumed
  // when short, started over when long.
  if (done && f.size >= 0 && static_cast<long long>(fs::file_size(part)) != f.size) {
    last_error = "got " + std::to_string(fs::file_size(part)) + " of " + std::to_string(f.size) + " bytes";
    done = false;
  }
  return done;
}

// Step 2a: the file into `part` (<blob>.incomplete), up to o.attempts tries. The partial file is kept on
// failure so that the next run resumes it instead of starting over.
void transfer_to_incomplete(Curl& curl, const HubOptions& o, const RepoRef& ref, const RemoteFile& f,
                            const fs::path& part) {
  std::string last_error;
  for (int attempt = 0; attempt < std::max(1, o.attempts); ++attempt)
    if (transfer_attempt(curl, o, ref, f, part, last_error)) return;
  throw Error(ref.repo + ": " + f.name + ": download failed (" + last_error + "); run again to resume");
}

// Step 2b: the downloaded bytes against the ETag. A mismatch deletes them: resuming a corrupted file would
// only keep it corrupted.
void verify_checksum(const RepoRef& ref, const RemoteFile& f, const fs::path& part) {
  // LFS files are named by their sha256, the others by their git blob id.
  const std::string got = file_digest(part, /*git_blob=*/f.etag.size() == 40);
  if (got != f.etag) {
    fs::remove(part);
    throw Error(ref.repo + ": " + f.name + ": checksum mismatch (expected " + f.etag + ", got " + got +
                "); the corrupted download was deleted");
  }
}

// Step 2: one blob into blobs/<etag>. Blobs are named by their content, so one already there is the right
// one (shared with other revisions) and is not fetched again; a new one appears there only verified, by a
// rename, so a reader never sees half a blob.
void fetch_blob(Curl& curl, const HubOptions& o, const RepoRef& ref, const fs::path& repo, const RemoteFile& f) {
  const fs::path blob = repo / "blobs" / f.etag;
  if (fs::exists(blob)) return;
  const fs::path part = blob.string() + ".incomplete";
  transfer_to_incomplete(curl, o, ref, f, part);
  verify_checksum(ref, f, part);
  fs::rename(part, blob);
}

// Step 3: the snapshot: relative links into blobs/ (as huggingface_hub makes them), each made atomically (a
// link under a temporary name, renamed over the old one). Called only once every blob is verified, so a
// snapshot never points at a missing or bad blob.
fs::path link_snapshot(const fs::path& repo, const std::string& commit, const std::vector<RemoteFile>& files) {
  const fs::path snap = repo / "snapshots" / commit;
  fs::create_directories(snap);
  for (const RemoteFile& f : files) {
    const fs::path link = snap / f.name;
    const fs::path tmp = link.string() + ".tmp" + std::to_string(getpid());
    fs::remove(tmp);
    fs::create_symlink(fs::path("..") / ".." / "blobs" / f.etag, tmp);
    fs::rename(tmp, link);
  }
  return snap;
}

// Step 4: refs/<revision> -> commit, which is what makes cached_snapshot() find the snapshot by a branch or
// tag name. Written last, so that a ref never names a snapshot still being made; a revision that is its own
// commit needs no ref.
void write_ref(const fs::path& repo, const RepoRef& ref, const std::string& commit) {
  if (!is_commit(ref.revision) || ref.revision != commit) write_atomic(repo / "refs" / ref.revision, commit);
}

}  // namespace

std::optional<RepoRef> parse_repo_id(const std::string& text) {
  static const std::regex re(R"(([A-Za-z0-9][A-Za-z0-9_.-]*)/([A-Za-z0-9][A-Za-z0-9_.-]*)(@([A-Za-z0-9_./-]+))?)");
  std::smatch m;
  if (!std::regex_match(text, m, re)) return std::nullopt;
  if (text.find("..") != std::string::npos) return std::nullopt;
  RepoRef r;
  r.repo = m[1].str() + "/" + m[2].str();
  if (m[4].matched) r.revision = m[4].str();
  return r;
}

std::string cache_dir() {
  if (!env("HF_HUB_CACHE").empty()) return env("HF_HUB_CACHE");
  if (!env("HF_HOME").empty()) return env("HF_HOME") + "/hub";
  const std::string home = env("HOME").empty() ? "/root" : env("HOME");
  return home + "/.cache/huggingface/hub";
}

bool offline() {
  const std::string v = lower(env("HF_HUB_OFFLINE"));
  return v == "1" || v == "true" || v == "yes" || v == "on";
}

const std::vector<std::string>& required_files() {
  static const std::vector<std::string> f = {"config.json", "model.safetensors", "spm.model"};
  return f;
}
const std::vector<std::string>& optional_files() {
  static const std::vector<std::string> f = {"added_tokens.json", "special_tokens_map.json", "tokenizer_config.json"};
  return f;
}

std::optional<std::string> cached_snapshot(const RepoRef& ref, const std::string& cache) {
  const fs::path repo = fs::path(cache) / repo_folder(ref.repo);
  std::string commit = ref.revision;
  if (!is_commit(commit)) {
    const fs::path r = repo / "refs" / ref.revision;
    if (!fs::exists(r)) return std::nullopt;
    commit = read_small(r);
  }
  const fs::path snap = repo / "snapshots" / commit;
  if (!fs::is_directory(snap) || !missing_list(snap).empty()) return std::nullopt;
  return snap.string();
}

std::string download(const RepoRef& ref, const HubOptions& options) {
  const HubOptions o = with_defaults(options);
  if (offline()) throw Error("HF_HUB_OFFLINE is set: cannot download " + ref.repo + "@" + ref.revision);
  const fs::path repo = fs::path(o.cache) / repo_folder(ref.repo);
  fs::create_directories(repo / "blobs");
  Curl curl(o);
  const RevisionMetadata meta = fetch_metadata(curl, o, ref);
  for (const RemoteFile& f : meta.files) fetch_blob(curl, o, ref, repo, f);
  const fs::path snap = link_snapshot(repo, meta.commit, meta.files);
  write_ref(repo, ref, meta.commit);
  return snap.string();
}

std::string resolve_model(const std::string& model, const HubOptions& options) {
  if (fs::is_directory(model)) return model;
  const auto ref = parse_repo_id(model);
  if (!ref) throw Error(model + ": no such model directory (nor a Hugging Face repo id 'org/name[@revision]')");
  const HubOptions o = with_defaults(options);
  if (auto snap = cached_snapshot(*ref, o.cache)) return *snap;
  if (offline()) {
    const fs::path repo = fs::path(o.cache) / repo_folder(ref->repo);
    std::string detail = "not in the cache " + o.cache;
    if (fs::exists(repo / "refs" / ref->revision)) {
      const fs::path snap = repo / "snapshots" / read_small(repo / "refs" / ref->revision);
      detail = "the cached snapshot " + snap.string() + " lacks " + missing_list(snap);
    }
    throw Error(model + ": HF_HUB_OFFLINE is set and " + detail + "; download it with `pairrm download " +
                ref->repo + "` where the network is reachable");
  }
  return download(*ref, o);
}

}  // namespace pairrm::hub
