#!/usr/bin/env python3
"""Write crates/buildspec/data/cloud-runtimes.yml: the runtimes and versions of AWS CodeBuild's
curated images, read from the runtimes.yml files of a clone of
github.com/aws/aws-codebuild-docker-images at its HEAD commit.

    scripts/cloud-runtimes.py /path/to/aws-codebuild-docker-images > crates/buildspec/data/cloud-runtimes.yml

Only names and versions are kept (commands are the cloud image's business); a runtime's
`default` entry (installs any other version at build time) is kept as the version `default`.
Needs PyYAML (BaseLoader: versions stay text, `1.20` is not the number 1.2).
"""
import subprocess
import sys

import yaml

# Upstream folder -> the image names CodeBuild accepts for it (current names first).
IMAGES = [
    ("ubuntu/standard/8.0", ["aws/codebuild/standard:8.0"]),
    ("ubuntu/standard/7.0", ["aws/codebuild/standard:7.0"]),
    ("ubuntu/standard/6.0", ["aws/codebuild/standard:6.0"]),
    ("ubuntu/standard/5.0", ["aws/codebuild/standard:5.0"]),
    ("unsupported_images/ubuntu/standard/4.0", ["aws/codebuild/standard:4.0"]),
    ("unsupported_images/ubuntu/standard/3.0", ["aws/codebuild/standard:3.0"]),
    ("unsupported_images/ubuntu/standard/2.0", ["aws/codebuild/standard:2.0"]),
    ("al/x86_64/standard/6.0", ["aws/codebuild/amazonlinux-x86_64-standard:6.0"]),
    ("al/x86_64/standard/5.0", ["aws/codebuild/amazonlinux-x86_64-standard:5.0",
                                "aws/codebuild/amazonlinux2-x86_64-standard:5.0"]),
    ("al/x86_64/standard/4.0", ["aws/codebuild/amazonlinux2-x86_64-standard:4.0",
                                "aws/codebuild/amazonlinux-x86_64-standard:4.0"]),
    ("al/x86_64/standard/corretto11", ["aws/codebuild/amazonlinux2-x86_64-standard:corretto11",
                                       "aws/codebuild/amazonlinux-x86_64-standard:corretto11"]),
    ("al/x86_64/standard/corretto8", ["aws/codebuild/amazonlinux2-x86_64-standard:corretto8",
                                      "aws/codebuild/amazonlinux-x86_64-standard:corretto8"]),
    ("unsupported_images/al2/x86_64/standard/3.0", ["aws/codebuild/amazonlinux2-x86_64-standard:3.0"]),
    ("unsupported_images/al2/x86_64/standard/2.0", ["aws/codebuild/amazonlinux2-x86_64-standard:2.0"]),
    ("unsupported_images/al2/x86_64/standard/1.0", ["aws/codebuild/amazonlinux2-x86_64-standard:1.0"]),
    ("al/aarch64/standard/4.0", ["aws/codebuild/amazonlinux-aarch64-standard:4.0"]),
    ("al/aarch64/standard/3.0", ["aws/codebuild/amazonlinux-aarch64-standard:3.0",
                                 "aws/codebuild/amazonlinux2-aarch64-standard:3.0"]),
    ("al/aarch64/standard/2.0", ["aws/codebuild/amazonlinux2-aarch64-standard:2.0"]),
    ("unsupported_images/al2/aarch64/standard/1.0", ["aws/codebuild/amazonlinux2-aarch64-standard:1.0"]),
]


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True).stdout


def main():
    repo = sys.argv[1]
    commit = git(repo, "rev-parse", "HEAD").strip()
    date = git(repo, "log", "-1", "--format=%cs", "HEAD").strip()
    out = [
        "# The runtimes and versions of AWS CodeBuild's curated images (`runtime-versions`), as",
        "# their runtimes.yml files list them. Written by scripts/cloud-runtimes.py; do not edit.",
        "# A runtime's `default` entry installs any other version at build time.",
        "upstream: github.com/aws/aws-codebuild-docker-images",
        f"commit: {commit}",
        f"date: {date}",
        "images:",
    ]
    for folder, names in IMAGES:
        data = yaml.load(git(repo, "show", f"HEAD:{folder}/runtimes.yml"), Loader=yaml.BaseLoader)
        out.append(f"  - file: {folder}/runtimes.yml")
        out.append(f"    names: [{', '.join(names)}]")
        out.append("    runtimes:")
        for runtime, body in data["runtimes"].items():
            versions = list(body.get("versions") or {})
            out.append(f"      {runtime}: [{', '.join(versions)}]")
    print("\n".join(out))


if __name__ == "__main__":
    main()
