//! Amazon ECS on the wire (AWS JSON 1.1, `X-Amz-Target: AmazonEC2ContainerServiceV20141113.*`,
//! signing name `ecs`): the subset a pipeline's deploy needs — clusters, services, task
//! definitions and tasks. The records and what changes them are [`services`]
//! (`localbuild_aws::ecs`, the domain); this module
//! parses requests, renders ECS's shapes and leaves errors to the one error map.
//!
//! Where a service answers: its task's container publishes the ports its image exposes on
//! `127.0.0.1`; DescribeTasks shows them as the container's `networkBindings` (`bindIP`,
//! `hostPort`, as ECS does for bridge networking) and DescribeServices' event "has started 1
//! tasks" says `Address: http://127.0.0.1:<port>`.

pub use localbuild_aws::ecs as services;

use crate::Ctx;
use crate::error::ApiError;
use crate::protocol::{parse, unknown};
use serde::Deserialize;
use serde_json::{Value, json};
use services::{EcsError, Service, ServiceView, Status, Task, TaskDefinition};

/// ECS's target prefix.
pub const ECS: &str = "AmazonEC2ContainerServiceV20141113";

/// The region and account of a call's ARNs.
#[derive(Clone, Copy)]
struct At<'a> {
    region: &'a str,
    account: &'a str,
}

fn arn(at: At<'_>, what: &str) -> String {
    format!("arn:aws:ecs:{}:{}:{what}", at.region, at.account)
}

fn cluster_arn(region: At<'_>, cluster: &str) -> String {
    arn(region, &format!("cluster/{cluster}"))
}

fn service_arn(region: At<'_>, cluster: &str, service: &str) -> String {
    arn(region, &format!("service/{cluster}/{service}"))
}

fn task_definition_arn(region: At<'_>, key: &str) -> String {
    arn(region, &format!("task-definition/{key}"))
}

fn task_arn(region: At<'_>, cluster: &str, id: &str) -> String {
    arn(region, &format!("task/{cluster}/{id}"))
}

fn status(s: Status) -> &'static str {
    match s {
        Status::Active => "ACTIVE",
        Status::Inactive => "INACTIVE",
    }
}

/// ECS's `Service` shape.
fn service_shape(region: At<'_>, v: &ServiceView) -> Value {
    let s = &v.service;
    let d = &s.deployment;
    let rollout = match d.rollout {
        services::Rollout::InProgress => "IN_PROGRESS",
        services::Rollout::Completed => "COMPLETED",
        services::Rollout::Failed => "FAILED",
    };
    let mut deployment = json!({
        "id": d.id,
        "status": "PRIMARY",
        "taskDefinition": task_definition_arn(region, &d.task_definition),
        "desiredCount": d.desired_count,
        "pendingCount": 0,
        "runningCount": v.running_count(),
        "failedTasks": d.failed_tasks,
        "createdAt": d.created_at,
        "updatedAt": d.updated_at,
        "launchType": "EC2",
        "rolloutState": rollout,
    });
    if let Some(r) = &d.reason {
        deployment["rolloutStateReason"] = json!(r);
    }
    json!({
        "serviceArn": service_arn(region, &s.cluster, &s.name),
        "serviceName": s.name,
        "clusterArn": cluster_arn(region, &s.cluster),
        "loadBalancers": [],
        "serviceRegistries": [],
        "status": status(s.status),
        "desiredCount": s.desired_count,
        "runningCount": v.running_count(),
        "pendingCount": 0,
        "launchType": "EC2",
        "taskDefinition": task_definition_arn(region, &s.task_definition),
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {"enable": false, "rollback": false},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
        },
        "deployments": if s.status == Status::Active { vec![deployment] } else { vec![] },
        "events": s.events.iter().map(|e| json!({"id": e.id, "createdAt": e.created_at, "message": e.message})).collect::<Vec<_>>(),
        "createdAt": s.created_at,
        "placementConstraints": [],
        "placementStrategy": [],
        "schedulingStrategy": "REPLICA",
        "deploymentController": {"type": "ECS"},
        "enableECSManagedTags": false,
        "propagateTags": "NONE",
        "enableExecuteCommand": false,
    })
}

fn task_definition_shape(region: At<'_>, d: &TaskDefinition) -> Value {
    let mut v = json!({
        "taskDefinitionArn": task_definition_arn(region, &d.key()),
        "containerDefinitions": d.container_definitions,
        "family": d.family,
        "revision": d.revision,
        "status": status(d.status),
        "compatibilities": ["EC2"],
        "registeredAt": d.registered_at,
        "volumes": [],
        "placementConstraints": [],
        "requiresAttributes": [],
    });
    for (k, val) in &d.extra {
        v[k] = val.clone();
    }
    v
}

fn task_shape(region: At<'_>, s: &Service, t: &Task, running: bool) -> Value {
    let last = if running { "RUNNING" } else { "STOPPED" };
    let bindings: Vec<Value> = t
        .ports
        .iter()
        .map(|(port, host)| {
            let (number, protocol) = port.split_once('/').unwrap_or((port.as_str(), "tcp"));
            json!({
                "bindIP": "127.0.0.1",
                "containerPort": number.parse::<u16>().unwrap_or(0),
                "hostPort": host,
                "protocol": protocol,
            })
        })
        .collect();
    let arn_ = task_arn(region, &s.cluster, &t.id);
    json!({
        "taskArn": arn_,
        "clusterArn": cluster_arn(region, &s.cluster),
        "taskDefinitionArn": task_definition_arn(region, &t.task_definition),
        "group": format!("service:{}", s.name),
        "startedBy": t.started_by,
        "lastStatus": last,
        "desiredStatus": if s.desired_count > 0 && s.status == Status::Active { "RUNNING" } else { "STOPPED" },
        "launchType": "EC2",
        "createdAt": t.started_at,
        "startedAt": t.started_at,
        "version": 1,
        "containers": [{
            "taskArn": arn_,
            "name": t.name,
            "image": t.image,
            "runtimeId": t.container_id,
            "lastStatus": last,
            "networkBindings": bindings,
        }],
    })
}

fn missing(arn: String) -> Value {
    json!({"arn": arn, "reason": "MISSING"})
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClusterIn {
    cluster: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateClusterIn {
    cluster_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeClustersIn {
    clusters: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeServicesIn {
    cluster: Option<String>,
    services: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateServiceIn {
    cluster: Option<String>,
    service: String,
    desired_count: Option<i64>,
    task_definition: Option<String>,
    force_new_deployment: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteServiceIn {
    cluster: Option<String>,
    service: String,
    force: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterIn {
    family: String,
    container_definitions: Vec<Value>,
    #[serde(flatten)]
    extra: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeTaskDefinitionIn {
    task_definition: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListTaskDefinitionsIn {
    family_prefix: Option<String>,
    status: Option<String>,
    sort: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListTasksIn {
    cluster: Option<String>,
    service_name: Option<String>,
    desired_status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeTasksIn {
    cluster: Option<String>,
    tasks: Vec<String>,
}

/// Run one ECS operation.
pub async fn call(ctx: &Ctx, op: &str, body: &[u8]) -> Result<Value, ApiError> {
    let state = &ctx.state;
    let db = state.history.db();
    let region = At {
        region: &ctx.region,
        account: ctx.account(),
    };
    let runtime = state.runtime.as_ref();
    match op {
        "ListClusters" => {
            let arns: Vec<String> = services::clusters(db)?
                .iter()
                .map(|c| cluster_arn(region, &c.name))
                .collect();
            Ok(json!({"clusterArns": arns}))
        }
        "CreateCluster" => {
            let i: CreateClusterIn = parse(body)?;
            let name = i.cluster_name.unwrap_or_else(|| "default".to_owned());
            let c = services::create_cluster(&state.ecs, &name).await?;
            Ok(json!({"cluster": cluster_shape(region, db, &c)?}))
        }
        "DescribeClusters" => {
            let i: DescribeClustersIn = parse(body)?;
            let (mut found, mut failures) = (vec![], vec![]);
            for id in i.clusters.unwrap_or_else(|| vec!["default".to_owned()]) {
                match services::cluster(db, Some(&id)) {
                    Ok(c) => found.push(cluster_shape(region, db, &c)?),
                    Err(EcsError::ClusterNotFound(name)) => {
                        failures.push(missing(cluster_arn(region, &name)))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(json!({"clusters": found, "failures": failures}))
        }
        "ListServices" => {
            let i: ClusterIn = parse(body)?;
            let c = services::cluster(db, i.cluster.as_deref())?;
            let arns: Vec<String> = services::services(db, &c.name)?
                .iter()
                .filter(|s| s.status == Status::Active)
                .map(|s| service_arn(region, &s.cluster, &s.name))
                .collect();
            Ok(json!({"serviceArns": arns}))
        }
        "DescribeServices" => {
            let i: DescribeServicesIn = parse(body)?;
            if i.services.is_empty() || i.services.len() > 10 {
                return Err(ApiError::InvalidParameter(
                    "services: between 1 and 10 services can be described at once.".into(),
                ));
            }
            let c = services::cluster(db, i.cluster.as_deref())?;
            let (mut found, mut failures) = (vec![], vec![]);
            for id in &i.services {
                match services::service(db, &c.name, id)? {
                    Some(s) => found.push(service_shape(region, &services::view(runtime, s).await)),
                    None => {
                        failures.push(missing(service_arn(region, &c.name, services::name_of(id))))
                    }
                }
            }
            Ok(json!({"services": found, "failures": failures}))
        }
        "UpdateService" => {
            let i: UpdateServiceIn = parse(body)?;
            let v = services::update(
                &state.ecs,
                i.cluster.as_deref(),
                &i.service,
                services::Update {
                    desired_count: i.desired_count,
                    task_definition: i.task_definition,
                    force_new_deployment: i.force_new_deployment.unwrap_or(false),
                },
            )
            .await?;
            Ok(json!({"service": service_shape(region, &v)}))
        }
        "DeleteService" => {
            let i: DeleteServiceIn = parse(body)?;
            let s = services::delete(
                &state.ecs,
                i.cluster.as_deref(),
                &i.service,
                i.force.unwrap_or(false),
            )
            .await?;
            let mut shape = service_shape(
                region,
                &ServiceView {
                    service: s,
                    running: false,
                },
            );
            // ECS answers DRAINING; the service reads INACTIVE once its tasks have stopped.
            shape["status"] = json!("DRAINING");
            Ok(json!({"service": shape}))
        }
        "RegisterTaskDefinition" => {
            let i: RegisterIn = parse(body)?;
            let mut extra = i.extra;
            extra.retain(|k, _| {
                matches!(
                    k.as_str(),
                    "taskRoleArn"
                        | "executionRoleArn"
                        | "networkMode"
                        | "requiresCompatibilities"
                        | "cpu"
                        | "memory"
                        | "pidMode"
                        | "ipcMode"
                        | "runtimePlatform"
                )
            });
            let d = services::register(db, &i.family, i.container_definitions, extra)?;
            Ok(json!({"taskDefinition": task_definition_shape(region, &d), "tags": []}))
        }
        "DescribeTaskDefinition" => {
            let i: DescribeTaskDefinitionIn = parse(body)?;
            let d = services::task_definition(db, &i.task_definition)?.ok_or_else(|| {
                ApiError::Client(format!(
                    "Unable to describe task definition: {}.",
                    i.task_definition
                ))
            })?;
            Ok(json!({"taskDefinition": task_definition_shape(region, &d), "tags": []}))
        }
        "ListTaskDefinitions" => {
            let i: ListTaskDefinitionsIn = parse(body)?;
            let want = match i.status.as_deref() {
                None | Some("ACTIVE") => Status::Active,
                Some("INACTIVE") => Status::Inactive,
                Some(other) => {
                    return Err(ApiError::InvalidParameter(format!(
                        "Invalid status {other:?}: ACTIVE, INACTIVE or DELETE_IN_PROGRESS."
                    )));
                }
            };
            let mut arns: Vec<String> = services::task_definitions(db, i.family_prefix.as_deref())?
                .iter()
                .filter(|d| d.status == want)
                .filter(|d| {
                    i.family_prefix
                        .as_deref()
                        .is_none_or(|p| d.family.starts_with(p))
                })
                .map(|d| task_definition_arn(region, &d.key()))
                .collect();
            if i.sort.as_deref() == Some("DESC") {
                arns.reverse();
            }
            Ok(json!({"taskDefinitionArns": arns}))
        }
        "ListTasks" => {
            let i: ListTasksIn = parse(body)?;
            let c = services::cluster(db, i.cluster.as_deref())?;
            let want_stopped = match i.desired_status.as_deref() {
                None | Some("RUNNING") => false,
                Some("STOPPED") => true,
                Some("PENDING") => return Ok(json!({"taskArns": []})),
                Some(other) => {
                    return Err(ApiError::InvalidParameter(format!(
                        "Invalid desiredStatus {other:?}: RUNNING, PENDING or STOPPED."
                    )));
                }
            };
            let list = services::services(db, &c.name)?;
            if let Some(name) = &i.service_name
                && !list
                    .iter()
                    .any(|s| s.name == services::name_of(name) && s.status == Status::Active)
            {
                return Err(ApiError::ServiceNotFound(format!(
                    "Service not found: {}.",
                    services::name_of(name)
                )));
            }
            let mut arns = vec![];
            for s in list {
                if i.service_name
                    .as_deref()
                    .is_some_and(|n| services::name_of(n) != s.name)
                {
                    continue;
                }
                let v = services::view(runtime, s).await;
                if let Some(t) = &v.service.task
                    && v.running != want_stopped
                {
                    arns.push(task_arn(region, &v.service.cluster, &t.id));
                }
            }
            Ok(json!({"taskArns": arns}))
        }
        "DescribeTasks" => {
            let i: DescribeTasksIn = parse(body)?;
            let c = services::cluster(db, i.cluster.as_deref())?;
            let list = services::services(db, &c.name)?;
            let (mut found, mut failures) = (vec![], vec![]);
            for id in &i.tasks {
                let id = id.rsplit('/').next().unwrap_or(id);
                let owner = list
                    .iter()
                    .find(|s| s.task.as_ref().is_some_and(|t| t.id == id));
                match owner {
                    Some(s) => {
                        let v = services::view(runtime, s.clone()).await;
                        if let Some(t) = &v.service.task {
                            found.push(task_shape(region, &v.service, t, v.running));
                        }
                    }
                    None => failures.push(missing(task_arn(region, &c.name, id))),
                }
            }
            Ok(json!({"tasks": found, "failures": failures}))
        }
        _ => Err(unknown(ECS, op)),
    }
}

fn cluster_shape(
    region: At<'_>,
    db: &localbuild_store::Db,
    c: &services::Cluster,
) -> Result<Value, ApiError> {
    let list = services::services(db, &c.name)?;
    let active = list.iter().filter(|s| s.status == Status::Active).count();
    let tasks = list
        .iter()
        .filter(|s| s.status == Status::Active && s.task.is_some())
        .count();
    Ok(json!({
        "clusterArn": cluster_arn(region, &c.name),
        "clusterName": c.name,
        "status": "ACTIVE",
        "registeredContainerInstancesCount": 0,
        "runningTasksCount": tasks,
        "pendingTasksCount": 0,
        "activeServicesCount": active,
        "statistics": [],
        "tags": [],
        "settings": [],
        "capacityProviders": [],
        "defaultCapacityProviderStrategy": [],
    }))
}
