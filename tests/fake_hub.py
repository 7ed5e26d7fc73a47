"""An in-memory Hugging Face Hub for tests: huggingface_hub 2.x sends every request through one `httpx2.Client`, and
`huggingface_hub.set_client_factory` lets the tests hand it a client whose `MockTransport` answers from a dict.

It serves what `push_to_hub`, `from_pretrained`, `ModelCard.load` and `hf_hub_download` use: repo creation, card
validation, preupload (every file a regular git blob: no LFS, no Xet), NDJSON commits, model info, and `resolve`
downloads (HEAD and GET) at a branch or a commit id. Each commit snapshots the whole file tree, so `revision=` can load
any earlier commit. Unknown routes answer 404 and are recorded in `FakeHub.unhandled` so a test can show them.
"""

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

import httpx2
import pytest
from huggingface_hub import constants, set_client_factory
from huggingface_hub.utils._http import default_client_factory, hf_request_event_hook

ENDPOINT = constants.ENDPOINT.rstrip("/")


@dataclass
class FakeRepo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit id -> {path: content}
    branches: dict[str, str] = field(default_factory=dict)  # branch -> commit id
    history: list[str] = field(default_factory=list)  # commit ids, oldest first

    def files_at(self, revision: str) -> tuple[str, dict[str, bytes]] | None:
        commit = self.branches.get(revision, revision)
        return (commit, self.commits[commit]) if commit in self.commits else None


class FakeHub:
    def __init__(self):
        self.repos: dict[str, FakeRepo] = {}
        self.unhandled: list[str] = []
        self.requests: list[str] = []

    # --- routing -------------------------------------------------------------------------------------------------
    def handle(self, request: httpx2.Request) -> httpx2.Response:
        path, method = unquote(request.url.path), request.method
        self.requests.append(f"{method} {path}")
        routes = (
            ("POST", r"/api/repos/create", self._create_repo),
            ("POST", r"/api/validate-yaml", lambda request: httpx2.Response(200, json={})),
            # huggingface_hub fetches a registry of agent harnesses (utils/_detect_agent.py); not needed here.
            ("GET", r"/api/agent-harnesses", lambda request: _not_found("EntryNotFound")),
            ("POST", r"/api/models/(?P<repo>[^/]+/[^/]+)/preupload/(?P<rev>.+)", self._preupload),
            ("POST", r"/api/models/(?P<repo>[^/]+/[^/]+)/commit/(?P<rev>.+)", self._commit),
            ("GET", r"/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>.+))?", self._model_info),
            ("HEAD", r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self._resolve),
            ("GET", r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self._resolve),
        )
        for route_method, pattern, answer in routes:
            match = re.fullmatch(pattern, path)
            if method == route_method and match:
                return answer(request, **match.groupdict())
        self.unhandled.append(f"{method} {path}")
        return httpx2.Response(404, json={"error": f"fake hub: no route for {method} {path}"})

    # --- endpoints -----------------------------------------------------------------------------------------------
    def _create_repo(self, request):
        body = json.loads(request.content)
        repo_id = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
        if repo_id in self.repos:
            return httpx2.Response(409, json={"error": "You already created this model repo", "url": repo_id})
        self.repos[repo_id] = FakeRepo()
        return httpx2.Response(200, json={"url": f"{ENDPOINT}/{repo_id}", "name": repo_id})

    def _preupload(self, request, repo, rev):
        files = json.loads(request.content)["files"]
        return httpx2.Response(
            200, json={"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
        )

    def _commit(self, request, repo, rev):
        fake = self.repos.get(repo)
        if fake is None:
            return _not_found("RepoNotFound")
        parent = fake.files_at(rev)
        files = dict(parent[1]) if parent else {}
        for line in request.content.decode().splitlines():
            entry = json.loads(line)
            if entry["key"] == "file":
                files[entry["value"]["path"]] = base64.b64decode(entry["value"]["content"])
            elif entry["key"] == "deletedFile":
                files.pop(entry["value"]["path"], None)
        commit = hashlib.sha1(f"{repo}{len(fake.history)}{sorted(files)}".encode()).hexdigest()
        fake.commits[commit], fake.branches[rev] = files, commit
        fake.history.append(commit)
        return httpx2.Response(
            200, json={"commitUrl": f"{ENDPOINT}/{repo}/commit/{commit}", "commitOid": commit, "pullRequestUrl": None}
        )

    def _model_info(self, request, repo, rev=None):
        found = self.repos[repo].files_at(rev or "main") if repo in self.repos else None
        if found is None:
            return _not_found("RepoNotFound" if repo not in self.repos else "RevisionNotFound")
        commit, files = found
        return httpx2.Response(
            200, json={"id": repo, "modelId": repo, "sha": commit, "siblings": [{"rfilename": p} for p in files]}
        )

    def _resolve(self, request, repo, rev, file):
        found = self.repos[repo].files_at(rev) if repo in self.repos else None
        if found is None:
            return _not_found("RepoNotFound" if repo not in self.repos else "RevisionNotFound")
        commit, files = found
        if file not in files:
            return _not_found("EntryNotFound")
        content = files[file]
        headers = {
            constants.HUGGINGFACE_HEADER_X_REPO_COMMIT: commit,
            "ETag": f'"{hashlib.sha1(content).hexdigest()}"',
            "Content-Length": str(len(content)),
        }
        return httpx2.Response(200, headers=headers, content=b"" if request.method == "HEAD" else content)


def _not_found(code: str) -> httpx2.Response:
    return httpx2.Response(404, headers={"X-Error-Code": code}, json={"error": code})


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """A fresh in-memory Hub; the Hugging Face cache and module cache live in `tmp_path/hf_home`."""
    hub = FakeHub()
    home = tmp_path / "hf_home"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setenv("HF_TOKEN", "hf_fake_token_for_tests")
    set_client_factory(
        lambda: httpx2.Client(
            transport=httpx2.MockTransport(hub.handle),
            event_hooks={"request": [hf_request_event_hook]},
            follow_redirects=True,
        )
    )
    hub.home = home
    yield hub
    set_client_factory(default_client_factory)
