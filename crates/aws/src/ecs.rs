//! ECS services as localbuild keeps them: clusters, services (their deployment, events and the
//! one task that runs), task definitions, and what changes them — the pipeline's ECS deploy
//! action ([`deploy`]), UpdateService ([`update`]) and DeleteService ([`delete`]). No wire
//! format: `localbuild-server`'s `ecs` module renders these records as ECS's shapes.
//!
//! A service's task is one container made by [`Runtime::run_service`] (the first container
//! definition's image, the ports its image exposes published on 127.0.0.1), labelled
//! `localbuild.ecs-service=<cluster>/<service>`. Records are documents in the history
//! (`ecs.cluster`, `ecs.service` keyed `<cluster>/<service>`, `ecs.task-definition` keyed
//! `<family>:<revision>`), so they outlive a restart of `serve`, as the containers do; whether
//! the task still runs is asked of the runtime when a service is read. Every change holds
//! the lock of [`Ecs`], so a deploy and an UpdateService never race on one container.

use crate::now;
use localbuild_db::Db;
use localbuild_engine::runtime::Runtime;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

pub const CLUSTER_DOC: &str = "ecs.cluster";
pub const SERVICE_DOC: &str = "ecs.service";
pub const TASK_DEFINITION_DOC: &str = "ecs.task-definition";

/// At most this many events are kept per service (ECS shows the latest 100).
const EVENTS_KEPT: usize = 100;

/// The ECS services of one history and one container runtime. Every change (a deploy,
/// UpdateService, DeleteService, CreateCluster) holds its lock.
pub struct Ecs {
    lock: tokio::sync::Mutex<()>,
    db: Db,
    runtime: Arc<dyn Runtime>,
}

impl Ecs {
    pub fn new(db: Db, runtime: Arc<dyn Runtime>) -> Ecs {
        Ecs {
            lock: tokio::sync::Mutex::new(()),
            db,
            runtime,
        }
    }
}

/// Why an ECS operation failed, named after ECS's exceptions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EcsError {
    #[error("Cluster not found: {0}.")]
    ClusterNotFound(String),
    #[error("Service not found: {0}.")]
    ServiceNotFound(String),
    #[error("Service was not ACTIVE: {0}.")]
    ServiceNotActive(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    Client(String),
    /// The history or the container runtime failed.
    #[error("{0}")]
    Server(String),
}

type Result<T> = std::result::Result<T, EcsError>;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub name: String,
    pub created_at: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Active,
    Inactive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Rollout {
    InProgress,
    Completed,
    Failed,
}

/// The service's current (PRIMARY) deployment: rollouts are carried out before the call that
/// starts one answers, so there is never a second one in flight.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: String,
    /// `family:revision`.
    pub task_definition: String,
    pub desired_count: u32,
    pub rollout: Rollout,
    pub reason: Option<String>,
    pub failed_tasks: u32,
    pub created_at: f64,
    pub updated_at: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: String,
    pub created_at: f64,
    pub message: String,
}

/// The service's task: one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// ECS's task id (32 hex digits).
    pub id: String,
    /// The container runtime's id and name of the container.
    pub container_id: String,
    pub container: String,
    /// The container definition's name and image.
    pub name: String,
    pub image: String,
    /// `family:revision` it runs.
    pub task_definition: String,
    /// (container port as `8080/tcp`, host port on 127.0.0.1).
    pub ports: Vec<(String, u16)>,
    pub started_at: f64,
    /// The deployment that started it.
    pub started_by: String,
}

impl Task {
    /// Where the task answers: `http://127.0.0.1:<host port>` of its first published port.
    pub fn address(&self) -> Option<String> {
        self.ports
            .first()
            .map(|(_, h)| format!("http://127.0.0.1:{h}"))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub cluster: String,
    pub name: String,
    pub status: Status,
    pub desired_count: u32,
    /// `family:revision`.
    pub task_definition: String,
    pub created_at: f64,
    /// Who made it (`codepipeline/<pipeline>`).
    pub created_by: String,
    pub deployment: Deployment,
    /// Newest first.
    pub events: Vec<Event>,
    pub task: Option<Task>,
}

/// A service with what the runtime says about its task now.
#[derive(Debug, Clone)]
pub struct ServiceView {
    pub service: Service,
    pub running: bool,
}

impl ServiceView {
    pub fn running_count(&self) -> u32 {
        u32::from(self.running)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinition {
    pub family: String,
    pub revision: u32,
    /// As registered (ECS's `ContainerDefinition` shapes); localbuild runs the first one.
    pub container_definitions: Vec<Value>,
    pub status: Status,
    pub registered_at: f64,
    /// Other registered fields (`cpu`, `memory`, `networkMode`, roles…), kept as given.
    #[serde(default)]
    pub extra: serde_json::Map<String, Value>,
}

impl TaskDefinition {
    pub fn key(&self) -> String {
        format!("{}:{}", self.family, self.revision)
    }

    /// The container localbuild runs: the first definition's name and image.
    fn runs(&self) -> Result<(String, String)> {
        let first = self.container_definitions.first();
        let name = first.and_then(|c| c["name"].as_str()).unwrap_or_default();
        let image = first.and_then(|c| c["image"].as_str()).unwrap_or_default();
        if image.is_empty() {
            return Err(EcsError::Client(format!(
                "The task definition {} has no container definition with an image.",
                self.key()
            )));
        }
        Ok((name.to_owned(), image.to_owned()))
    }
}

/// ECS's rule for cluster, service, family and container names.
pub fn check_name(field: &str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 255
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(EcsError::InvalidParameter(format!(
            "Invalid {field} {value:?}: up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed."
        )))
    }
}

/// ECS's rule for a container image: up to 255 letters, numbers, hyphens, underscores, colons,
/// periods, forward slashes, number signs and `@`; not starting with `-` (it goes to Docker).
pub fn check_image(field: &str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 255
        && !value.starts_with('-')
        && value.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.' | b'/' | b'#' | b'@')
        });
    if ok {
        Ok(())
    } else {
        Err(EcsError::InvalidParameter(format!(
            "Invalid {field} {value:?}: up to 255 letters, numbers, hyphens, underscores, colons, periods, forward slashes, number signs and @ are allowed."
        )))
    }
}

/// The name in a cluster, service or task definition identifier: a name or an ARN
/// (`…:cluster/NAME`, `…:service/CLUSTER/NAME`, `…:task-definition/FAMILY:REV`).
pub fn name_of(identifier: &str) -> &str {
    if identifier.starts_with("arn:") {
        identifier
            .rsplit_once(':')
            .map_or(identifier, |(_, rest)| rest)
            .rsplit('/')
            .next()
            .unwrap_or(identifier)
    } else {
        identifier
    }
}

/// A task definition's `family:revision` in an ARN (the family and revision after the last
/// `/`), or as given.
fn task_definition_of(identifier: &str) -> &str {
    if identifier.starts_with("arn:") {
        identifier.rsplit('/').next().unwrap_or(identifier)
    } else {
        identifier
    }
}

fn server(e: impl std::fmt::Display) -> EcsError {
    EcsError::Server(format!("the ECS records failed: {e}"))
}

fn get<T: serde::de::DeserializeOwned>(db: &Db, kind: &str, key: &str) -> Result<Option<T>> {
    match db.get_doc(kind, key).map_err(server)? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text).map(Some).map_err(server),
    }
}

fn put<T: Serialize>(db: &Db, kind: &str, key: &str, value: &T) -> Result<()> {
    let text = serde_json::to_string(value).map_err(server)?;
    db.put_doc(kind, key, &text).map_err(server)
}

fn list<T: serde::de::DeserializeOwned>(db: &Db, kind: &str, prefix: &str) -> Result<Vec<T>> {
    db.list_docs(kind, prefix)
        .map_err(server)?
        .into_iter()
        .map(|(_, text)| serde_json::from_str(&text).map_err(server))
        .collect()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Every cluster, by name.
pub fn clusters(db: &Db) -> Result<Vec<Cluster>> {
    let mut all: Vec<Cluster> = list(db, CLUSTER_DOC, "")?;
    all.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(all)
}

/// The cluster a request names (a name or ARN); ECS's `default` when it names none.
pub fn cluster(db: &Db, identifier: Option<&str>) -> Result<Cluster> {
    let name = name_of(identifier.unwrap_or("default"));
    get(db, CLUSTER_DOC, name)?.ok_or_else(|| EcsError::ClusterNotFound(name.to_owned()))
}

/// CreateCluster: a new cluster, or the one of that name.
pub async fn create_cluster(ecs: &Ecs, name: &str) -> Result<Cluster> {
    check_name("clusterName", name)?;
    let _turn = ecs.lock.lock().await;
    let db = &ecs.db;
    if let Some(c) = get::<Cluster>(db, CLUSTER_DOC, name)? {
        return Ok(c);
    }
    let c = Cluster {
        name: name.to_owned(),
        created_at: now(),
    };
    put(db, CLUSTER_DOC, name, &c)?;
    Ok(c)
}

/// The services of a cluster, by name (INACTIVE ones too).
pub fn services(db: &Db, cluster: &str) -> Result<Vec<Service>> {
    let mut all: Vec<Service> = list(db, SERVICE_DOC, &format!("{cluster}/"))?;
    all.retain(|s| s.cluster == cluster);
    all.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(all)
}

/// Every service of every cluster (the console, serve's shutdown note).
pub fn all_services(db: &Db) -> Result<Vec<Service>> {
    let mut all: Vec<Service> = list(db, SERVICE_DOC, "")?;
    all.sort_by(|a, b| (&a.cluster, &a.name).cmp(&(&b.cluster, &b.name)));
    Ok(all)
}

pub fn service(db: &Db, cluster: &str, identifier: &str) -> Result<Option<Service>> {
    get(
        db,
        SERVICE_DOC,
        &format!("{cluster}/{}", name_of(identifier)),
    )
}

/// The service with whether its task runs now.
pub async fn view(runtime: &dyn Runtime, service: Service) -> ServiceView {
    let running = match &service.task {
        Some(t) => runtime.is_running(&t.container_id).await,
        None => false,
    };
    ServiceView { service, running }
}

/// A task definition by `family`, `family:revision` or ARN (`family` alone: its latest ACTIVE
/// revision).
pub fn task_definition(db: &Db, identifier: &str) -> Result<Option<TaskDefinition>> {
    let id = task_definition_of(identifier);
    match id.split_once(':') {
        Some(_) => get(db, TASK_DEFINITION_DOC, id),
        None => Ok(task_definitions(db, Some(id))?
            .into_iter()
            .filter(|d| d.family == id && d.status == Status::Active)
            .max_by_key(|d| d.revision)),
    }
}

/// Every task definition (of families starting with `prefix`), by family and revision.
pub fn task_definitions(db: &Db, prefix: Option<&str>) -> Result<Vec<TaskDefinition>> {
    let mut all: Vec<TaskDefinition> = list(db, TASK_DEFINITION_DOC, prefix.unwrap_or(""))?;
    all.sort_by(|a, b| (&a.family, a.revision).cmp(&(&b.family, b.revision)));
    Ok(all)
}

/// RegisterTaskDefinition: the family's next revision.
pub fn register(
    db: &Db,
    family: &str,
    container_definitions: Vec<Value>,
    extra: serde_json::Map<String, Value>,
) -> Result<TaskDefinition> {
    check_name("family", family)?;
    if container_definitions.is_empty() {
        return Err(EcsError::Client(
            "Container list cannot be empty: containerDefinitions needs at least one container definition.".into(),
        ));
    }
    for (i, c) in container_definitions.iter().enumerate() {
        let name = c["name"].as_str().unwrap_or_default();
        check_name(&format!("containerDefinitions[{i}].name"), name)?;
        match c["image"].as_str() {
            Some(image) => check_image(&format!("containerDefinitions[{i}].image"), image)?,
            None => {
                return Err(EcsError::Client(format!(
                    "Container.image should not be null or empty (containerDefinitions[{i}].image)."
                )));
            }
        }
    }
    let revision = task_definitions(db, Some(family))?
        .iter()
        .filter(|d| d.family == family)
        .map(|d| d.revision)
        .max()
        .unwrap_or(0)
        + 1;
    let def = TaskDefinition {
        family: family.to_owned(),
        revision,
        container_definitions,
        status: Status::Active,
        registered_at: now(),
        extra,
    };
    put(db, TASK_DEFINITION_DOC, &def.key(), &def)?;
    Ok(def)
}

fn event(service: &mut Service, message: String) {
    service.events.insert(
        0,
        Event {
            id: new_id(),
            created_at: now(),
            message,
        },
    );
    service.events.truncate(EVENTS_KEPT);
}

fn save(db: &Db, service: &Service) -> Result<()> {
    put(
        db,
        SERVICE_DOC,
        &format!("{}/{}", service.cluster, service.name),
        service,
    )
}

/// The label value and a container name for a service's task.
fn container_names(service: &Service, task: &str) -> (String, String) {
    let label = format!("{}/{}", service.cluster, service.name);
    // Names are ECS names (letters, digits, - and _): valid in a container name as they are.
    let part = |s: &str| s.chars().take(60).collect::<String>();
    let short: String = task.chars().take(8).collect();
    let name = format!(
        "localbuild-ecs-{}-{}-{short}",
        part(&service.cluster),
        part(&service.name)
    );
    (label, name)
}

/// Stop the service's task: remove its container.
async fn stop_task(runtime: &dyn Runtime, service: &mut Service) -> Result<()> {
    if let Some(task) = service.task.take() {
        if let Err(e) = runtime.remove_container(&task.container_id).await {
            service.task = Some(task);
            return Err(EcsError::Server(format!(
                "could not stop the task's container: {e}"
            )));
        }
        let message = format!(
            "(service {}) has stopped 1 running tasks: (task {}).",
            service.name, task.id
        );
        event(service, message);
    }
    Ok(())
}

/// Start a task of the service's task definition; it replaces the running one only once it
/// runs. On failure the previous task (if any) keeps running and the error is returned.
async fn start_task(
    db: &Db,
    runtime: &dyn Runtime,
    service: &mut Service,
) -> std::result::Result<(), String> {
    let def = task_definition(db, &service.task_definition)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the task definition {} is gone", service.task_definition))?;
    let (name, image) = def.runs().map_err(|e| e.to_string())?;
    let id = new_id();
    let (label, container) = container_names(service, &id);
    let run = runtime
        .run_service(&image, &container, &label)
        .await
        .map_err(|e| e.to_string())?;
    let task = Task {
        id,
        container_id: run.id,
        container,
        name,
        image,
        task_definition: def.key(),
        ports: run.ports,
        started_at: now(),
        started_by: service.deployment.id.clone(),
    };
    let address = match task.ports.first() {
        Some((port, host)) => format!(" Address: http://127.0.0.1:{host} (container port {port})."),
        None => " The image exposes no port: nothing is published.".to_owned(),
    };
    let message = format!(
        "(service {}) has started 1 tasks: (task {}).{address}",
        service.name, task.id
    );
    service.task = Some(task);
    event(service, message);
    Ok(())
}

/// Make the service's task match its desired count (0: none; 1: one that runs).
async fn reconcile(db: &Db, runtime: &dyn Runtime, service: &mut Service) -> Result<()> {
    let running = match &service.task {
        Some(t) => runtime.is_running(&t.container_id).await,
        None => false,
    };
    if service.desired_count == 0 {
        stop_task(runtime, service).await?;
    } else if !running && let Err(reason) = start_task(db, runtime, service).await {
        service.deployment.failed_tasks += 1;
        let message = format!(
            "(service {}) was unable to start a task: {reason}",
            service.name
        );
        event(service, message);
    }
    Ok(())
}

/// A new deployment of the service's task definition: a new task replaces the running one
/// (with desired count 0, none starts). `Err` carries the reason a rollout FAILED, after the
/// record is saved.
async fn roll_out(
    db: &Db,
    runtime: &dyn Runtime,
    service: &mut Service,
) -> Result<std::result::Result<(), String>> {
    let at = now();
    service.deployment = Deployment {
        id: format!("ecs-svc/{}", deployment_number()),
        task_definition: service.task_definition.clone(),
        desired_count: service.desired_count,
        rollout: Rollout::InProgress,
        reason: None,
        failed_tasks: 0,
        created_at: at,
        updated_at: at,
    };
    let outcome = if service.desired_count == 0 {
        stop_task(runtime, service).await?;
        Ok(())
    } else {
        start_task(db, runtime, service).await
    };
    service.deployment.updated_at = now();
    match &outcome {
        Ok(()) => {
            service.deployment.rollout = Rollout::Completed;
            service.deployment.reason = Some("ECS deployment completed.".to_owned());
            let message = format!(
                "(service {}) (deployment {}) deployment completed.",
                service.name, service.deployment.id
            );
            event(service, message);
            let message = format!("(service {}) has reached a steady state.", service.name);
            event(service, message);
        }
        Err(reason) => {
            service.deployment.rollout = Rollout::Failed;
            service.deployment.failed_tasks = 1;
            service.deployment.reason = Some(format!("ECS deployment failed: {reason}"));
            let message = format!(
                "(service {}) was unable to start a task: {reason}",
                service.name
            );
            event(service, message);
        }
    }
    save(db, service)?;
    Ok(outcome)
}

/// ECS's deployment ids are `ecs-svc/` and 19 digits.
fn deployment_number() -> u64 {
    let n = u64::from_str_radix(&new_id()[..15], 16).unwrap_or(0);
    1_000_000_000_000_000_000 + n % 9_000_000_000_000_000_000
}

/// What the pipeline's ECS deploy action asks for.
pub struct DeployInput<'a> {
    pub cluster: &'a str,
    pub service: &'a str,
    /// `imagedefinitions.json`'s entries: (container name, image).
    pub images: Vec<(String, String)>,
    /// `codepipeline/<pipeline>`.
    pub by: String,
}

/// The pipeline's ECS deploy action: register a revision of the service's task definition with
/// the new images and roll it out. The service (and its cluster) is made on the first deploy,
/// with desired count 1; a service scaled to 0 gets the new revision and starts nothing.
pub async fn deploy(ecs: &Ecs, input: DeployInput<'_>) -> Result<ServiceView> {
    check_name("ClusterName", input.cluster)?;
    check_name("ServiceName", input.service)?;
    for (name, image) in &input.images {
        if !name.is_empty() {
            check_name("imagedefinitions name", name)?;
        }
        check_image("imagedefinitions imageUri", image)?;
    }
    let Some((first_name, first_image)) = input.images.first().cloned() else {
        return Err(EcsError::InvalidParameter(
            "imagedefinitions names no image".into(),
        ));
    };
    let _turn = ecs.lock.lock().await;
    let db = &ecs.db;
    let runtime = ecs.runtime.as_ref();
    if get::<Cluster>(db, CLUSTER_DOC, input.cluster)?.is_none() {
        let c = Cluster {
            name: input.cluster.to_owned(),
            created_at: now(),
        };
        put(db, CLUSTER_DOC, &c.name, &c)?;
    }
    let existing =
        service(db, input.cluster, input.service)?.filter(|s| s.status == Status::Active);
    let current = match &existing {
        Some(s) => task_definition(db, &s.task_definition)?,
        None => None,
    };
    let family = current
        .as_ref()
        .map_or_else(|| input.service.to_owned(), |d| d.family.clone());
    let (definitions, extra) = match current {
        Some(def) => {
            let mut defs = def.container_definitions;
            for (name, image) in &input.images {
                let found = defs
                    .iter_mut()
                    .find(|c| name.is_empty() || c["name"].as_str() == Some(name.as_str()));
                match found {
                    Some(c) => c["image"] = Value::String(image.clone()),
                    None => {
                        return Err(EcsError::InvalidParameter(format!(
                            "The container {name} does not exist in the task definition {}.",
                            def.family
                        )));
                    }
                }
            }
            (defs, def.extra)
        }
        None => {
            let name = if first_name.is_empty() {
                input.service.to_owned()
            } else {
                first_name
            };
            (
                vec![serde_json::json!({"name": name, "image": first_image, "essential": true})],
                serde_json::Map::new(),
            )
        }
    };
    let def = register(db, &family, definitions, extra)?;
    let mut service = existing.unwrap_or_else(|| {
        let at = now();
        let mut s = Service {
            cluster: input.cluster.to_owned(),
            name: input.service.to_owned(),
            status: Status::Active,
            desired_count: 1,
            task_definition: def.key(),
            created_at: at,
            created_by: input.by.clone(),
            deployment: Deployment {
                id: String::new(),
                task_definition: def.key(),
                desired_count: 1,
                rollout: Rollout::InProgress,
                reason: None,
                failed_tasks: 0,
                created_at: at,
                updated_at: at,
            },
            events: vec![],
            task: None,
        };
        let message = format!("(service {}) was created by {}.", s.name, s.created_by);
        event(&mut s, message);
        s
    });
    service.task_definition = def.key();
    match roll_out(db, runtime, &mut service).await? {
        Ok(()) => Ok(view(runtime, service).await),
        Err(reason) => Err(EcsError::Server(reason)),
    }
}

/// UpdateService's input, as far as localbuild acts on it.
#[derive(Debug, Default)]
pub struct Update {
    pub desired_count: Option<i64>,
    pub task_definition: Option<String>,
    pub force_new_deployment: bool,
}

/// The cluster and the ACTIVE service a change names.
fn active(db: &Db, cluster: Option<&str>, identifier: &str) -> Result<Service> {
    let cluster = cluster_of(db, cluster)?;
    let service = service(db, &cluster.name, identifier)?
        .ok_or_else(|| EcsError::ServiceNotFound(name_of(identifier).to_owned()))?;
    if service.status != Status::Active {
        return Err(EcsError::ServiceNotActive(service.name));
    }
    Ok(service)
}

fn cluster_of(db: &Db, identifier: Option<&str>) -> Result<Cluster> {
    cluster(db, identifier)
}

/// UpdateService: a desired count of 0 stops the task and 1 starts one; a new task definition
/// or `forceNewDeployment` rolls out a new deployment.
pub async fn update(
    ecs: &Ecs,
    cluster: Option<&str>,
    identifier: &str,
    update: Update,
) -> Result<ServiceView> {
    let _turn = ecs.lock.lock().await;
    let db = &ecs.db;
    let runtime = ecs.runtime.as_ref();
    let mut service = active(db, cluster, identifier)?;
    if let Some(n) = update.desired_count {
        if !(0..=1).contains(&n) {
            return Err(EcsError::InvalidParameter(format!(
                "Invalid desiredCount {n}: localbuild runs at most one task per service, so desiredCount is 0 or 1."
            )));
        }
        service.desired_count = n as u32;
        service.deployment.desired_count = n as u32;
    }
    let new_definition = match &update.task_definition {
        None => None,
        Some(id) => {
            let def = task_definition(db, id)?
                .filter(|d| d.status == Status::Active)
                .ok_or_else(|| {
                    EcsError::InvalidParameter(format!("TaskDefinition not found: {id}."))
                })?;
            def.runs()?;
            Some(def.key())
        }
    };
    let redeploy = update.force_new_deployment
        || new_definition
            .as_ref()
            .is_some_and(|d| *d != service.task_definition);
    if let Some(d) = new_definition {
        service.task_definition = d;
    }
    if redeploy {
        // A failed rollout is recorded in the deployment; the call itself succeeds, as in ECS.
        let _ = roll_out(db, runtime, &mut service).await?;
    } else {
        reconcile(db, runtime, &mut service).await?;
        if service.desired_count == 0 || service.task.is_some() {
            let message = format!("(service {}) has reached a steady state.", service.name);
            event(&mut service, message);
        }
        save(db, &service)?;
    }
    Ok(view(runtime, service).await)
}

/// DeleteService: a service scaled above 0 only with `force`; its task stops and the service
/// stays INACTIVE (DescribeServices shows it, ListServices does not).
pub async fn delete(
    ecs: &Ecs,
    cluster: Option<&str>,
    identifier: &str,
    force: bool,
) -> Result<Service> {
    let _turn = ecs.lock.lock().await;
    let db = &ecs.db;
    let runtime = ecs.runtime.as_ref();
    let mut service = active(db, cluster, identifier)?;
    if service.desired_count > 0 && !force {
        return Err(EcsError::InvalidParameter(
            "The service cannot be stopped while it is scaled above 0. Scale it to 0 first, or delete it with force.".into(),
        ));
    }
    stop_task(runtime, &mut service).await?;
    service.desired_count = 0;
    service.deployment.desired_count = 0;
    service.status = Status::Inactive;
    let message = format!("(service {}) was deleted.", service.name);
    event(&mut service, message);
    save(db, &service)?;
    Ok(service)
}

/// The services whose tasks keep running after `serve` stops (ACTIVE, desired count above 0),
/// as `<cluster>/<service>`.
pub fn left_running(db: &Db) -> Result<Vec<Service>> {
    Ok(all_services(db)?
        .into_iter()
        .filter(|s| s.status == Status::Active && s.desired_count > 0 && s.task.is_some())
        .collect())
}

/// The one line `serve` prints when it stops while services run: which, and how to remove
/// them. `None` when none runs.
pub fn shutdown_note(db: &Db, endpoint: &str) -> Option<String> {
    let running = left_running(db).ok()?;
    let first = running.first()?;
    let names: Vec<String> = running
        .iter()
        .map(|s| format!("{}/{}", s.cluster, s.name))
        .collect();
    let (noun, verb, them) = if running.len() == 1 {
        ("service", "keeps", "it")
    } else {
        ("services", "keep", "them")
    };
    let command = if running.len() == 1 {
        format!(
            "aws ecs delete-service --force --cluster {} --service {}",
            first.cluster, first.name
        )
    } else {
        "aws ecs delete-service --force --cluster CLUSTER --service SERVICE for each".to_owned()
    };
    Some(format!(
        "localbuild serve: {} ECS {noun} {verb} running, as in AWS ({}); to remove {them}, start serve again and run: AWS_ENDPOINT_URL={endpoint} {command}",
        running.len(),
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_ecs_rules() {
        assert!(check_name("cluster", "local_1-a").is_ok());
        for bad in ["", "a/b", "../x", "a b", "a.b", &"x".repeat(256), "é"] {
            let e = check_name("cluster", bad).unwrap_err();
            assert!(matches!(e, EcsError::InvalidParameter(_)), "{bad}");
            assert!(e.to_string().contains("cluster"), "{e}");
        }
        for good in [
            "busybox",
            "127.0.0.1:5000/app:latest",
            "repo/app@sha256:abc",
            "a#b",
        ] {
            assert!(check_image("image", good).is_ok(), "{good}");
        }
        for bad in ["", "--privileged", "a b", "a;rm", "a\nb", "$(x)"] {
            assert!(check_image("image", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn identifiers_are_names_or_arns() {
        assert_eq!(name_of("local"), "local");
        assert_eq!(
            name_of("arn:aws:ecs:us-east-1:000000000000:cluster/local"),
            "local"
        );
        assert_eq!(
            name_of("arn:aws:ecs:us-east-1:000000000000:service/local/web"),
            "web"
        );
        assert_eq!(
            task_definition_of("arn:aws:ecs:us-east-1:000000000000:task-definition/web:3"),
            "web:3"
        );
        assert_eq!(task_definition_of("web:3"), "web:3");
    }

    fn running(cluster: &str, name: &str) -> Service {
        let d = Deployment {
            id: "ecs-svc/1".into(),
            task_definition: format!("{name}:1"),
            desired_count: 1,
            rollout: Rollout::Completed,
            reason: None,
            failed_tasks: 0,
            created_at: 0.0,
            updated_at: 0.0,
        };
        Service {
            cluster: cluster.into(),
            name: name.into(),
            status: Status::Active,
            desired_count: 1,
            task_definition: format!("{name}:1"),
            created_at: 0.0,
            created_by: "codepipeline/p".into(),
            deployment: d,
            events: vec![],
            task: Some(Task {
                id: "t".into(),
                container_id: "c".into(),
                container: "n".into(),
                name: "app".into(),
                image: "busybox".into(),
                task_definition: format!("{name}:1"),
                ports: vec![],
                started_at: 0.0,
                started_by: "ecs-svc/1".into(),
            }),
        }
    }

    #[test]
    fn the_shutdown_note_names_what_keeps_running_and_how_to_remove_it() {
        let home = tempfile::tempdir().unwrap();
        let db = &Db::open(&home.path().join("localbuild.db")).unwrap();
        assert_eq!(shutdown_note(db, "http://127.0.0.1:4599"), None);
        save(db, &running("local", "web")).unwrap();
        let mut stopped = running("local", "zero");
        stopped.desired_count = 0;
        stopped.task = None;
        save(db, &stopped).unwrap();
        let mut gone = running("local", "gone");
        gone.status = Status::Inactive;
        save(db, &gone).unwrap();
        let note = shutdown_note(db, "http://127.0.0.1:4599").unwrap();
        assert_eq!(
            note,
            "localbuild serve: 1 ECS service keeps running, as in AWS (local/web); to remove it, start serve again and run: AWS_ENDPOINT_URL=http://127.0.0.1:4599 aws ecs delete-service --force --cluster local --service web"
        );
        save(db, &running("prod", "api")).unwrap();
        let note = shutdown_note(db, "http://127.0.0.1:4599").unwrap();
        assert!(
            note.contains(
                "2 ECS services keep running, as in AWS (local/web, prod/api); to remove them"
            ),
            "{note}"
        );
        assert!(
            note.contains("--cluster CLUSTER --service SERVICE for each"),
            "{note}"
        );
        assert_eq!(note.lines().count(), 1);
    }

    #[test]
    fn deployment_ids_have_nineteen_digits() {
        for _ in 0..100 {
            assert_eq!(deployment_number().to_string().len(), 19);
        }
    }
}
