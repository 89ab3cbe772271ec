//! ECR on the wire (AWS JSON 1.1, `X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.*`,
//! signing name `ecr`): decodes requests into `localbuild_aws::ecr` calls and encodes ECR's
//! shapes. The calls block (the registry's API, its storage, the database), so they run on the
//! blocking pool.

use crate::error::ApiError;
use crate::protocol::{parse, unknown};
use localbuild_aws::ecr::{
    CreateRepository, Ecr, EcrError, ImageDetail, ImageFailure, ImageId, Repository, registry_host,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// ECR's target prefix.
pub const ECR: &str = "AmazonEC2ContainerRegistry_V20150921";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Scanning {
    scan_on_push: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Encryption {
    encryption_type: String,
    kms_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateIn {
    repository_name: String,
    registry_id: Option<String>,
    image_tag_mutability: Option<String>,
    image_scanning_configuration: Option<Scanning>,
    encryption_configuration: Option<Encryption>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeReposIn {
    registry_id: Option<String>,
    repository_names: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RepoIn {
    repository_name: String,
    registry_id: Option<String>,
    force: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdIn {
    image_digest: Option<String>,
    image_tag: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TagFilter {
    tag_status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImagesIn {
    repository_name: String,
    registry_id: Option<String>,
    image_ids: Option<Vec<IdIn>>,
    filter: Option<TagFilter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyIn {
    repository_name: String,
    registry_id: Option<String>,
    lifecycle_policy_text: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScanningIn {
    repository_name: String,
    registry_id: Option<String>,
    image_scanning_configuration: Scanning,
}

/// This registry's id only (another account's registry is not here).
fn registry_id(ecr: &Ecr, id: Option<&String>) -> Result<(), ApiError> {
    let this = ecr.account();
    match id {
        Some(id) if id != this => Err(ApiError::from(EcrError::InvalidParameter(format!(
            "Invalid parameter at 'registryId' failed to satisfy constraint: 'the local registry is {this}' (got {id:?})"
        )))),
        _ => Ok(()),
    }
}

fn repository(account: &str, r: &Repository, region: &str) -> Value {
    json!({
        "repositoryArn": r.arn(account, region),
        "registryId": account,
        "repositoryName": r.name,
        "repositoryUri": r.uri(account, region),
        "createdAt": r.created_at,
        "imageTagMutability": r.image_tag_mutability,
        "imageScanningConfiguration": {"scanOnPush": r.scan_on_push},
        "encryptionConfiguration": match &r.kms_key {
            Some(k) => json!({"encryptionType": r.encryption_type, "kmsKey": k}),
            None => json!({"encryptionType": r.encryption_type}),
        },
    })
}

fn image_id(id: &ImageId) -> Value {
    let mut v = json!({});
    if let Some(d) = &id.digest {
        v["imageDigest"] = json!(d);
    }
    if let Some(t) = &id.tag {
        v["imageTag"] = json!(t);
    }
    v
}

fn failure(f: &ImageFailure) -> Value {
    json!({"imageId": image_id(&f.id), "failureCode": f.code, "failureReason": f.reason})
}

fn detail(account: &str, name: &str, d: &ImageDetail) -> Value {
    let mut v = json!({
        "registryId": account,
        "repositoryName": name,
        "imageDigest": d.digest,
        "imageSizeInBytes": d.size,
        "imagePushedAt": d.pushed_at,
        "imageManifestMediaType": d.media_type,
        "imageStatus": "ACTIVE",
    });
    if !d.tags.is_empty() {
        v["imageTags"] = json!(d.tags);
    }
    if let Some(a) = &d.artifact_media_type {
        v["artifactMediaType"] = json!(a);
    }
    v
}

fn ids(list: Option<Vec<IdIn>>, required: bool) -> Result<Vec<ImageId>, ApiError> {
    let list = list.unwrap_or_default();
    if required && (list.is_empty() || list.len() > 100) {
        return Err(EcrError::InvalidParameter(format!(
            "Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length between 1 and 100' (got {})",
            list.len()
        ))
        .into());
    }
    Ok(list
        .into_iter()
        .map(|i| ImageId {
            digest: i.image_digest,
            tag: i.image_tag,
        })
        .collect())
}

/// `tagStatus`: TAGGED, UNTAGGED or ANY (the default).
fn keep(filter: &Option<TagFilter>, d: &ImageDetail) -> Result<bool, ApiError> {
    match filter.as_ref().and_then(|f| f.tag_status.as_deref()) {
        None | Some("ANY") => Ok(true),
        Some("TAGGED") => Ok(!d.tags.is_empty()),
        Some("UNTAGGED") => Ok(d.tags.is_empty()),
        Some(other) => Err(EcrError::InvalidParameter(format!(
            "Invalid parameter at 'filter.tagStatus' failed to satisfy constraint: 'Member must satisfy enum value set: [TAGGED, UNTAGGED, ANY]' (got {other:?})"
        ))
        .into()),
    }
}

/// One ECR call, on the blocking pool.
pub(super) async fn call(
    ecr: Option<Arc<Ecr>>,
    region: String,
    op: String,
    body: Vec<u8>,
) -> Result<Value, ApiError> {
    let Some(ecr) = ecr else {
        return Err(ApiError::from(EcrError::Registry(
            localbuild_aws::registry::RegistryError::Start(
                "this process serves no ECR registry".to_owned(),
            ),
        )));
    };
    tokio::task::spawn_blocking(move || call_blocking(&ecr, &region, &op, &body))
        .await
        .map_err(|e| ApiError::Service(format!("the ECR call failed: {e}")))?
}

fn call_blocking(ecr: &Ecr, region: &str, op: &str, body: &[u8]) -> Result<Value, ApiError> {
    let e = ApiError::from;
    match op {
        "CreateRepository" => {
            let i: CreateIn = parse(body)?;
            registry_id(ecr, i.registry_id.as_ref())?;
            let (encryption_type, kms_key) = match i.encryption_configuration {
                Some(c) => (Some(c.encryption_type), c.kms_key),
                None => (None, None),
            };
            let r = ecr
                .create_repository(CreateRepository {
                    name: i.repository_name,
                    image_tag_mutability: i.image_tag_mutability,
                    scan_on_push: i.image_scanning_configuration.and_then(|s| s.scan_on_push),
                    encryption_type,
                    kms_key,
                })
                .map_err(e)?;
            Ok(json!({"repository": repository(ecr.account(), &r, region)}))
        }
        "DescribeRepositories" => {
            let i: DescribeReposIn = parse(body)?;
            registry_id(ecr, i.registry_id.as_ref())?;
            let repos = match i.repository_names {
                Some(names) => names
                    .iter()
                    .map(|n| ecr.repository(n))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(e)?,
                None => ecr.repositories().map_err(e)?,
            };
            let list: Vec<Value> = repos
                .iter()
                .map(|r| repository(ecr.account(), r, region))
                .collect();
            Ok(json!({"repositories": list}))
        }
        "DeleteRepository" => {
            let i: RepoIn = parse(body)?;
            registry_id(ecr, i.registry_id.as_ref())?;
            let r = ecr
                .delete_repository(&i.repository_name, i.force.unwrap_or(false))
                .map_err(e)?;
            Ok(json!({"repository": repository(ecr.account(), &r, region)}))
        }
        "GetAuthorizationToken" => {
            let (token, expires_at) = ecr.authorization().map_err(e)?;
            Ok(json!({"authorizationData": [{
                "authorizationToken": token,
                "expiresAt": expires_at,
                "proxyEndpoint": format!("https://{}", registry_host(ecr.account(), region)),
            }]}))
        }
        "DescribeImages" => {
            let i: ImagesIn = parse(body)?;
            registry_id(ecr, i.registry_id.as_ref())?;
            let name = i.repository_name;
            let wanted = ids(i.image_ids, false)?;
            let mut details = vec![];
            for d in ecr.images(&name).map_err(e)? {
                if keep(&i.filter, &d)? {
                    details.push(d);
                }
            }
            if !wanted.is_empty() {
                let mut chosen = vec![];
                for id in &wanted {
                    let hit = details.iter().find(|d| {
                        id.digest.as_ref().is_none_or(|x| *x == d.digest)
                            && id.tag.as_ref().is_none_or(|t| d.tags.contains(t))
                            && (id.digest.is_some() || id.tag.is_some())
                    });
                    match hit {
                        Some(d) => chosen.push(d.clone()),
                        None => {
                            let what = match (&id.tag, &id.digest) {
                                (Some(t), _) => format!("imageTag={t}"),
                                (None, Some(d)) => format!("imageDigest={d}"),
                                (None, None) => "an empty image id".to_owned(),
                            };
                            return Err(e(EcrError::ImageNotFound {
                                repository: name,
                                what,
                                registry: ecr.account().to_owned(),
                            }));
                        }
                    }
                }
                details = chosen;
            }
            let list: Vec<Value> = details
                .iter()
                .map(|d| detail(ecr.account(), &name, d))
                .collect();
            Ok(json!({"imageDetails": list}))
        }
        "ListImages" => {
            let i: ImagesIn = parse(body)?;
            registry_id(ecr, i.registry_id.as_ref())?;
            let mut list = vec![];
            for d in ecr.images(&i.repository_name).map_err(e)? {
                if !keep(&i.filter, &d)? {
                    continue;
                }
                if d.tags.is_empty() {
                    list.push(json!({"imageDigest": d.digest}));
                }
                for t in &d.tags {
                    list.push(json!({"imageDigest": d.digest, "imageTag": t}));
                }
            }
            Ok(json!({"imageIds": list}))
        }
        "BatchGetImage" => {
            let i: ImagesIn = parse(body)?;
            registry_id(ecr, i.registry_id.as_ref())?;
            let wanted = ids(i.image_ids, true)?;
            let (found, failed) = ecr.batch_get(&i.repository_name, &wanted).map_err(e)?;
            let images: Vec<Value> = found
                .iter()
                .map(|(id, m)| {
                    json!({
                        "registryId": ecr.account(),
                        "repositoryName": i.repository_name,
                        "imageId": image_id(id),
                        "imageManifest": m.text,
                        "imageManifestMediaType": m.media_type,
                    })
                })
                .collect();
            let failures: Vec<Value> = failed.iter().map(failure).collect();
            Ok(json!({"images": images, "failures": failures}))
        }
        "BatchDeleteImage" => {
            let i: ImagesIn = parse(body)?;
            registry_id(ecr, i.registry_id.as_ref())?;
            let wanted = ids(i.image_ids, true)?;
            let (deleted, failed) = ecr.batch_delete(&i.repository_name, &wanted).map_err(e)?;
            let ids: Vec<Value> = deleted.iter().map(image_id).collect();
            let failures: Vec<Value> = failed.iter().map(failure).collect();
            Ok(json!({"imageIds": ids, "failures": failures}))
        }
        "PutLifecyclePolicy" => {
            let i: PolicyIn = parse(body)?;
            registry_id(ecr, i.registry_id.as_ref())?;
            let text = i.lifecycle_policy_text.unwrap_or_default();
            let r = ecr
                .put_lifecycle_policy(&i.repository_name, &text)
                .map_err(e)?;
            Ok(json!({
                "registryId": ecr.account(),
                "repositoryName": r.name,
                "lifecyclePolicyText": text,
            }))
        }
        "GetLifecyclePolicy" => {
            let i: PolicyIn = parse(body)?;
            registry_id(ecr, i.registry_id.as_ref())?;
            let r = ecr.repository(&i.repository_name).map_err(e)?;
            let text = r.lifecycle_policy.clone().ok_or_else(|| {
                e(EcrError::LifecyclePolicyNotFound(
                    r.name.clone(),
                    ecr.account().to_owned(),
                ))
            })?;
            Ok(json!({
                "registryId": ecr.account(),
                "repositoryName": r.name,
                "lifecyclePolicyText": text,
            }))
        }
        "DeleteLifecyclePolicy" => {
            let i: PolicyIn = parse(body)?;
            registry_id(ecr, i.registry_id.as_ref())?;
            let (r, text) = ecr.delete_lifecycle_policy(&i.repository_name).map_err(e)?;
            Ok(json!({
                "registryId": ecr.account(),
                "repositoryName": r.name,
                "lifecyclePolicyText": text,
            }))
        }
        "PutImageScanningConfiguration" => {
            let i: ScanningIn = parse(body)?;
            registry_id(ecr, i.registry_id.as_ref())?;
            let r = ecr
                .put_scanning(
                    &i.repository_name,
                    i.image_scanning_configuration.scan_on_push.unwrap_or(false),
                )
                .map_err(e)?;
            Ok(json!({
                "registryId": ecr.account(),
                "repositoryName": r.name,
                "imageScanningConfiguration": {"scanOnPush": r.scan_on_push},
            }))
        }
        other => Err(unknown(ECR, other)),
    }
}
