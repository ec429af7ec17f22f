//! The core seams in memory, as far as the router tests use them. The real implementations are
//! tested against the real store and runtime elsewhere; a method no router test reaches panics
//! and names itself, so a test that strays here fails instead of passing on made-up data.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use vireo_core::{
    AliasName, AliasTarget, ApiKey, AsyncInvocation, AsyncSubmitter, Body, Call, Catalog,
    DeployError, Deployed, Deployer, Enqueued, FunctionInfo, HeartbeatBounds, HostClaim,
    HostPattern, HttpRoute, InvocationId, InvocationQuery, InvocationRecord, InvokeAuth,
    InvokeError, Invoker, KeyValueStore, KvCursor, KvKeyPage, KvStoreId, KvStoreInfo, KvVersion,
    KvVersioned, LogLine, LogQuery, Name, NamespaceInfo, NamespaceQuotas, NewAsyncInvocation,
    NewSchedule, NewVersion, NodeInfo, NodeRegistry, Principal, QueueAdmin, QueueCounts, Records,
    Retained, Retention, RetryPolicy, RoutePattern, RouteStore, Schedule, ScheduleStore,
    SecretError, SecretInfo, SecretManager, SecretName, SecretOpener, SecretValue, Source,
    SourceMonitor, SourceProbe, SourceProbeError, SourceStatus, SourceStore, StoreError,
    TenantStore, Unanswered, UsageQuery, UsageRow, VersionInfo, VersionSelector, VersionSettings,
};

macro_rules! not_reached {
    ($seam:literal) => {
        unreachable!(concat!("the router tests never call ", $seam))
    };
}

/// A key-value store's keys and values.
type Entries = BTreeMap<String, Vec<u8>>;

/// What the fake invoker was handed.
#[derive(Debug, Clone)]
pub struct SeenCall {
    pub namespace: Name,
    pub function: Name,
    pub uri: String,
    pub authorization: Option<String>,
    pub by_key: Option<String>,
}

/// Namespaces, keys and functions in memory, and the calls the invoker saw.
#[derive(Default)]
pub struct World {
    namespaces: Mutex<BTreeMap<Name, NamespaceInfo>>,
    keys: Mutex<BTreeMap<String, ApiKey>>,
    functions: Mutex<BTreeMap<(Name, Name), FunctionInfo>>,
    calls: Mutex<Vec<SeenCall>>,
    /// Key-value stores other than the `default` every namespace has, by (namespace, store).
    kv: Mutex<BTreeMap<(Name, Name), Entries>>,
    /// What `Deployer::warm_versions` answers for every function.
    warm: Vec<u32>,
}

impl World {
    /// A world whose deployer has `warm` loaded of every function.
    pub fn with_warm_versions(warm: Vec<u32>) -> Self {
        Self {
            warm,
            ..Self::default()
        }
    }

    pub fn calls(&self) -> Vec<SeenCall> {
        self.calls.lock().unwrap().clone()
    }
}

fn missing_function(namespace: &Name, function: &Name) -> StoreError {
    StoreError::FunctionNotFound {
        namespace: namespace.clone(),
        function: function.clone(),
    }
}

#[async_trait]
impl TenantStore for World {
    async fn create_namespace(
        &self,
        name: &Name,
        quotas: &NamespaceQuotas,
        at_us: i64,
    ) -> Result<NamespaceInfo, StoreError> {
        let mut namespaces = self.namespaces.lock().unwrap();
        if namespaces.contains_key(name) {
            return Err(StoreError::NamespaceExists(name.clone()));
        }
        let created = NamespaceInfo {
            name: name.clone(),
            created_at_us: at_us,
            quotas: *quotas,
            functions: 0,
        };
        namespaces.insert(name.clone(), created.clone());
        Ok(created)
    }

    async fn list_namespaces(&self) -> Result<Vec<NamespaceInfo>, StoreError> {
        Ok(self.namespaces.lock().unwrap().values().cloned().collect())
    }

    async fn get_namespace(&self, name: &Name) -> Result<NamespaceInfo, StoreError> {
        let namespaces = self.namespaces.lock().unwrap();
        namespaces
            .get(name)
            .cloned()
            .ok_or_else(|| StoreError::NamespaceNotFound(name.clone()))
    }

    async fn set_quotas(&self, _: &Name, _: &NamespaceQuotas) -> Result<NamespaceInfo, StoreError> {
        not_reached!("TenantStore::set_quotas")
    }

    async fn delete_namespace(&self, _: &Name, _: i64) -> Result<(), StoreError> {
        not_reached!("TenantStore::delete_namespace")
    }

    async fn create_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.keys
            .lock()
            .unwrap()
            .insert(key.id.clone(), key.clone());
        Ok(())
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        Ok(self.keys.lock().unwrap().values().cloned().collect())
    }

    async fn revoke_key(&self, id: &str, at_us: i64) -> Result<ApiKey, StoreError> {
        let mut keys = self.keys.lock().unwrap();
        let key = keys
            .get_mut(id)
            .ok_or_else(|| StoreError::KeyNotFound(id.to_string()))?;
        key.revoked_at_us.get_or_insert(at_us);
        Ok(key.clone())
    }
}

#[async_trait]
impl Catalog for World {
    async fn namespace_exists(&self, namespace: &Name) -> Result<bool, StoreError> {
        Ok(self.namespaces.lock().unwrap().contains_key(namespace))
    }

    async fn create_function(
        &self,
        namespace: &Name,
        function: &Name,
        at_us: i64,
    ) -> Result<FunctionInfo, StoreError> {
        if !self.namespace_exists(namespace).await? {
            return Err(StoreError::NamespaceNotFound(namespace.clone()));
        }
        let mut functions = self.functions.lock().unwrap();
        let key = (namespace.clone(), function.clone());
        if functions.contains_key(&key) {
            return Err(StoreError::FunctionExists {
                namespace: namespace.clone(),
                function: function.clone(),
            });
        }
        let created = FunctionInfo {
            namespace: namespace.clone(),
            name: function.clone(),
            created_at_us: at_us,
            latest_version: None,
            aliases: BTreeMap::new(),
            splits: BTreeMap::new(),
        };
        functions.insert(key, created.clone());
        Ok(created)
    }

    async fn get_function(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<FunctionInfo, StoreError> {
        let functions = self.functions.lock().unwrap();
        functions
            .get(&(namespace.clone(), function.clone()))
            .cloned()
            .ok_or_else(|| missing_function(namespace, function))
    }

    async fn list_functions(&self, namespace: &Name) -> Result<Vec<FunctionInfo>, StoreError> {
        let functions = self.functions.lock().unwrap();
        Ok(functions
            .values()
            .filter(|info| &info.namespace == namespace)
            .cloned()
            .collect())
    }

    async fn delete_function(&self, _: &Name, _: &Name) -> Result<(), StoreError> {
        not_reached!("Catalog::delete_function")
    }

    async fn add_version(
        &self,
        _: &Name,
        _: &Name,
        _: NewVersion,
        _: i64,
    ) -> Result<VersionInfo, StoreError> {
        not_reached!("Catalog::add_version")
    }

    async fn list_versions(&self, _: &Name, _: &Name) -> Result<Vec<VersionInfo>, StoreError> {
        not_reached!("Catalog::list_versions")
    }

    async fn resolve_version(
        &self,
        _: &Name,
        _: &Name,
        _: &VersionSelector,
    ) -> Result<VersionInfo, StoreError> {
        not_reached!("Catalog::resolve_version")
    }

    async fn component_hashes(&self) -> Result<Vec<String>, StoreError> {
        not_reached!("Catalog::component_hashes")
    }

    async fn set_alias(
        &self,
        _: &Name,
        _: &Name,
        _: &AliasName,
        _: &AliasTarget,
    ) -> Result<(), StoreError> {
        not_reached!("Catalog::set_alias")
    }

    async fn get_alias(
        &self,
        _: &Name,
        _: &Name,
        _: &AliasName,
    ) -> Result<AliasTarget, StoreError> {
        not_reached!("Catalog::get_alias")
    }

    async fn delete_alias(&self, _: &Name, _: &Name, _: &AliasName) -> Result<(), StoreError> {
        not_reached!("Catalog::delete_alias")
    }
}

#[async_trait]
impl Records for World {
    async fn record_invocations(
        &self,
        _: &[InvocationRecord],
        _: &[LogLine],
    ) -> Result<(), StoreError> {
        not_reached!("Records::record_invocations")
    }

    async fn get_invocation(
        &self,
        _: &InvocationId,
    ) -> Result<Option<InvocationRecord>, StoreError> {
        Ok(None)
    }

    async fn list_invocations(
        &self,
        _: &InvocationQuery,
    ) -> Result<Vec<InvocationRecord>, StoreError> {
        not_reached!("Records::list_invocations")
    }

    async fn read_logs(&self, _: &LogQuery) -> Result<Vec<LogLine>, StoreError> {
        not_reached!("Records::read_logs")
    }

    async fn usage(&self, _: &UsageQuery) -> Result<Vec<UsageRow>, StoreError> {
        not_reached!("Records::usage")
    }

    async fn apply_retention(&self, _: &Retention) -> Result<Retained, StoreError> {
        not_reached!("Records::apply_retention")
    }
}

#[async_trait]
impl Deployer for World {
    async fn deploy(
        &self,
        _: &Name,
        _: &Name,
        _: Bytes,
        _: VersionSettings,
    ) -> Result<Deployed, DeployError> {
        not_reached!("Deployer::deploy")
    }

    async fn reconfigure(
        &self,
        _: &VersionInfo,
        _: VersionSettings,
    ) -> Result<Deployed, DeployError> {
        not_reached!("Deployer::reconfigure")
    }

    async fn set_alias(
        &self,
        _: &Name,
        _: &Name,
        _: &AliasName,
        _: &AliasTarget,
    ) -> Result<(), StoreError> {
        not_reached!("Deployer::set_alias")
    }

    async fn delete_alias(&self, _: &Name, _: &Name, _: &AliasName) -> Result<(), StoreError> {
        not_reached!("Deployer::delete_alias")
    }

    fn reuse_fallback_versions(&self, _: &Name, _: &Name) -> Vec<u32> {
        Vec::new()
    }

    fn warm_versions(&self, _: &Name, _: &Name) -> Vec<u32> {
        self.warm.clone()
    }

    async fn delete(&self, namespace: &Name, function: &Name) -> Result<(), StoreError> {
        let mut functions = self.functions.lock().unwrap();
        functions
            .remove(&(namespace.clone(), function.clone()))
            .map(drop)
            .ok_or_else(|| missing_function(namespace, function))
    }
}

#[async_trait]
impl Invoker for World {
    /// Versions here ask for no credentials besides keys (JWTs are tested end to end).
    async fn check_credentials(
        &self,
        _: &InvokeAuth,
        _: &Principal,
        _: &mut http::HeaderMap,
    ) -> Result<(), InvokeError> {
        Ok(())
    }

    /// Answers `200 ran` after noting what the call carried.
    async fn invoke(&self, call: Call) -> Result<http::Response<Body>, Unanswered> {
        let header = |name| {
            call.request
                .headers()
                .get(name)
                .map(|value| value.to_str().unwrap().to_string())
        };
        let seen = SeenCall {
            namespace: call.namespace.clone(),
            function: call.function.clone(),
            uri: call.request.uri().to_string(),
            authorization: header(http::header::AUTHORIZATION),
            by_key: match &call.principal {
                Principal::Key(caller) => Some(caller.key_id.clone()),
                _ => None,
            },
        };
        self.calls.lock().unwrap().push(seen);
        let body = Full::new(Bytes::from_static(b"ran"))
            .map_err(|never| match never {})
            .boxed_unsync();
        Ok(http::Response::new(body))
    }

    async fn resolve(
        &self,
        _: &Name,
        _: &Name,
        _: &VersionSelector,
    ) -> Result<VersionInfo, StoreError> {
        not_reached!("Invoker::resolve")
    }
}

#[async_trait]
impl QueueAdmin for World {
    async fn get_async(&self, _: &InvocationId) -> Result<Option<AsyncInvocation>, StoreError> {
        Ok(None)
    }

    async fn queue_counts(&self, _: &Name, _: &Name) -> Result<QueueCounts, StoreError> {
        not_reached!("QueueAdmin::queue_counts")
    }

    async fn list_dead(
        &self,
        _: &Name,
        _: &Name,
        _: u32,
    ) -> Result<Vec<AsyncInvocation>, StoreError> {
        not_reached!("QueueAdmin::list_dead")
    }

    async fn redrive(
        &self,
        _: &Name,
        _: &Name,
        _: Option<&[InvocationId]>,
        _: i64,
    ) -> Result<u64, StoreError> {
        not_reached!("QueueAdmin::redrive")
    }

    async fn retry_policy(&self, _: &Name, _: &Name) -> Result<RetryPolicy, StoreError> {
        not_reached!("QueueAdmin::retry_policy")
    }

    async fn set_retry_policy(
        &self,
        _: &Name,
        _: &Name,
        _: &RetryPolicy,
    ) -> Result<(), StoreError> {
        not_reached!("QueueAdmin::set_retry_policy")
    }
}

#[async_trait]
impl AsyncSubmitter for World {
    async fn submit(&self, _: NewAsyncInvocation) -> Result<Enqueued, StoreError> {
        not_reached!("AsyncSubmitter::submit")
    }
}

#[async_trait]
impl NodeRegistry for World {
    async fn heartbeat(&self, _: &NodeInfo, _: &HeartbeatBounds) -> Result<u32, StoreError> {
        not_reached!("NodeRegistry::heartbeat")
    }
    async fn nodes(&self, _: i64) -> Result<Vec<NodeInfo>, StoreError> {
        not_reached!("NodeRegistry::nodes")
    }
    async fn leave(&self, _: &str) -> Result<(), StoreError> {
        not_reached!("NodeRegistry::leave")
    }
}

#[async_trait]
impl RouteStore for World {
    async fn add_route(&self, _: &HttpRoute) -> Result<(), StoreError> {
        not_reached!("RouteStore::add_route")
    }

    async fn list_routes(&self, _: Option<&Name>) -> Result<Vec<HttpRoute>, StoreError> {
        not_reached!("RouteStore::list_routes")
    }

    async fn delete_route(&self, _: &Name, _: &RoutePattern) -> Result<(), StoreError> {
        not_reached!("RouteStore::delete_route")
    }

    async fn claim_host(&self, _: &HostPattern, _: &Name, _: i64) -> Result<(), StoreError> {
        not_reached!("RouteStore::claim_host")
    }

    async fn list_host_claims(&self) -> Result<Vec<HostClaim>, StoreError> {
        not_reached!("RouteStore::list_host_claims")
    }

    async fn release_host(&self, _: &HostPattern) -> Result<(), StoreError> {
        not_reached!("RouteStore::release_host")
    }
}

#[async_trait]
impl ScheduleStore for World {
    async fn create_schedule(&self, _: &NewSchedule) -> Result<Schedule, StoreError> {
        not_reached!("ScheduleStore::create_schedule")
    }

    async fn get_schedule(&self, _: &Name, _: &Name) -> Result<Schedule, StoreError> {
        not_reached!("ScheduleStore::get_schedule")
    }

    async fn list_schedules(&self, _: &Name) -> Result<Vec<Schedule>, StoreError> {
        not_reached!("ScheduleStore::list_schedules")
    }

    async fn delete_schedule(&self, _: &Name, _: &Name) -> Result<(), StoreError> {
        not_reached!("ScheduleStore::delete_schedule")
    }

    async fn set_schedule_paused(
        &self,
        _: &Name,
        _: &Name,
        _: bool,
        _: Option<i64>,
    ) -> Result<Schedule, StoreError> {
        not_reached!("ScheduleStore::set_schedule_paused")
    }

    async fn due_schedules(&self, _: i64, _: u32) -> Result<Vec<Schedule>, StoreError> {
        not_reached!("ScheduleStore::due_schedules")
    }

    async fn advance_schedule(
        &self,
        _: &Schedule,
        _: Option<i64>,
        _: Option<(i64, &InvocationId)>,
    ) -> Result<bool, StoreError> {
        not_reached!("ScheduleStore::advance_schedule")
    }
}

#[async_trait]
impl SourceStore for World {
    async fn create_source(&self, _: &vireo_core::NewSource) -> Result<Source, StoreError> {
        not_reached!("SourceStore::create_source")
    }

    async fn get_source(&self, _: &Name, _: &Name) -> Result<Source, StoreError> {
        not_reached!("SourceStore::get_source")
    }

    async fn list_sources(&self, _: &Name) -> Result<Vec<Source>, StoreError> {
        not_reached!("SourceStore::list_sources")
    }

    async fn all_sources(&self) -> Result<Vec<Source>, StoreError> {
        not_reached!("SourceStore::all_sources")
    }

    async fn delete_source(&self, _: &Name, _: &Name) -> Result<(), StoreError> {
        not_reached!("SourceStore::delete_source")
    }

    async fn set_source_paused(&self, _: &Name, _: &Name, _: bool) -> Result<Source, StoreError> {
        not_reached!("SourceStore::set_source_paused")
    }
}

#[async_trait]
impl SourceProbe for World {
    async fn probe(&self, _: &Source, _: Option<&SecretValue>) -> Result<(), SourceProbeError> {
        not_reached!("SourceProbe::probe")
    }
}

impl SourceMonitor for World {
    fn status(&self, _: &Name, _: &Name) -> Option<SourceStatus> {
        not_reached!("SourceMonitor::status")
    }
}

#[async_trait]
impl SecretOpener for World {
    async fn open_secret(&self, _: &Name, _: &SecretName) -> Result<SecretValue, StoreError> {
        not_reached!("SecretOpener::open_secret")
    }
}

#[async_trait]
impl SecretManager for World {
    async fn set_secret(
        &self,
        _: &Name,
        _: &SecretName,
        _: SecretValue,
    ) -> Result<bool, SecretError> {
        not_reached!("SecretManager::set_secret")
    }

    async fn list_secrets(&self, _: &Name) -> Result<Vec<SecretInfo>, StoreError> {
        not_reached!("SecretManager::list_secrets")
    }

    async fn delete_secret(&self, _: &Name, _: &SecretName) -> Result<(), StoreError> {
        not_reached!("SecretManager::delete_secret")
    }
}

impl World {
    /// The keys of `store`, after checking its namespace and that it exists.
    fn with_store<T>(
        &self,
        store: &KvStoreId,
        then: impl FnOnce(&mut Entries) -> T,
    ) -> Result<T, StoreError> {
        if !self
            .namespaces
            .lock()
            .unwrap()
            .contains_key(&store.namespace)
        {
            return Err(StoreError::NamespaceNotFound(store.namespace.clone()));
        }
        let mut stores = self.kv.lock().unwrap();
        let id = (store.namespace.clone(), store.store.clone());
        if store.is_default() {
            return Ok(then(stores.entry(id).or_default()));
        }
        let keys = stores
            .get_mut(&id)
            .ok_or_else(|| StoreError::KvStoreNotFound {
                namespace: store.namespace.clone(),
                store: store.store.clone(),
            })?;
        Ok(then(keys))
    }
}

#[async_trait]
impl KeyValueStore for World {
    async fn create_store(
        &self,
        namespace: &Name,
        name: &Name,
        at_us: i64,
    ) -> Result<KvStoreInfo, StoreError> {
        let id = KvStoreId::new(namespace.clone(), name.clone());
        if id.is_default() || self.with_store(&id, |_| ()).is_ok() {
            return Err(StoreError::KvStoreExists {
                namespace: namespace.clone(),
                store: name.clone(),
            });
        }
        self.kv
            .lock()
            .unwrap()
            .insert((namespace.clone(), name.clone()), BTreeMap::new());
        Ok(KvStoreInfo {
            name: name.clone(),
            keys: 0,
            bytes: 0,
            created_at_us: at_us,
        })
    }

    async fn list_stores(&self, namespace: &Name) -> Result<Vec<KvStoreInfo>, StoreError> {
        self.with_store(
            &KvStoreId::new(namespace.clone(), Name::default_kv_store()),
            |_| (),
        )?;
        let stores = self.kv.lock().unwrap();
        Ok(stores
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|((_, name), keys)| KvStoreInfo {
                name: name.clone(),
                keys: keys.len() as u64,
                bytes: keys.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum(),
                created_at_us: 0,
            })
            .collect())
    }

    async fn store_exists(&self, store: &KvStoreId) -> Result<bool, StoreError> {
        Ok(self.with_store(store, |_| ()).is_ok())
    }

    async fn delete_store(&self, namespace: &Name, name: &Name) -> Result<(), StoreError> {
        let id = KvStoreId::new(namespace.clone(), name.clone());
        if id.is_default() {
            return Err(StoreError::KvDefaultStore {
                namespace: namespace.clone(),
            });
        }
        self.with_store(&id, |_| ())?;
        self.kv
            .lock()
            .unwrap()
            .remove(&(namespace.clone(), name.clone()));
        Ok(())
    }

    async fn get(&self, store: &KvStoreId, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_store(store, |keys| keys.get(key).cloned())
    }

    async fn set(&self, store: &KvStoreId, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.with_store(store, |keys| {
            keys.insert(key.to_string(), value.to_vec());
        })
    }

    async fn delete(&self, store: &KvStoreId, key: &str) -> Result<bool, StoreError> {
        self.with_store(store, |keys| keys.remove(key).is_some())
    }

    async fn exists(&self, store: &KvStoreId, key: &str) -> Result<bool, StoreError> {
        self.with_store(store, |keys| keys.contains_key(key))
    }

    async fn list_keys(
        &self,
        store: &KvStoreId,
        prefix: &str,
        cursor: Option<&KvCursor>,
        limit: u32,
    ) -> Result<KvKeyPage, StoreError> {
        self.with_store(store, |keys| {
            let mut listed: Vec<String> = keys
                .keys()
                .filter(|key| key.starts_with(prefix))
                .filter(|key| cursor.is_none_or(|cursor| key.as_str() > cursor.last_key()))
                .take(limit as usize + 1)
                .cloned()
                .collect();
            let more = listed.len() > limit as usize;
            listed.truncate(limit as usize);
            let cursor = more.then(|| KvCursor::after(listed.last().expect("a full page")));
            KvKeyPage {
                keys: listed,
                cursor,
            }
        })
    }

    async fn increment(&self, _: &KvStoreId, _: &str, _: i64) -> Result<i64, StoreError> {
        not_reached!("KeyValueStore::increment")
    }

    async fn get_versioned(&self, _: &KvStoreId, _: &str) -> Result<KvVersioned, StoreError> {
        not_reached!("KeyValueStore::get_versioned")
    }

    /// Only from "not stored", as the API creates a key; the fake keeps no versions.
    async fn swap(
        &self,
        store: &KvStoreId,
        key: &str,
        expected: KvVersion,
        value: &[u8],
    ) -> Result<bool, StoreError> {
        if expected != KvVersion::ABSENT {
            not_reached!("KeyValueStore::swap from a stored version")
        }
        self.with_store(store, |keys| {
            let absent = !keys.contains_key(key);
            if absent {
                keys.insert(key.to_string(), value.to_vec());
            }
            absent
        })
    }

    async fn get_many(
        &self,
        _: &KvStoreId,
        _: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        not_reached!("KeyValueStore::get_many")
    }

    async fn set_many(&self, _: &KvStoreId, _: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        not_reached!("KeyValueStore::set_many")
    }

    async fn delete_many(&self, _: &KvStoreId, _: &[String]) -> Result<(), StoreError> {
        not_reached!("KeyValueStore::delete_many")
    }
}

/// The buckets of a server without any: these tests do not reach the buckets API, which the
/// end-to-end suite tests against the real store.
pub struct NoBuckets;

#[async_trait]
impl vireo_core::ObjectStore for NoBuckets {
    async fn create_bucket(
        &self,
        namespace: &Name,
        _: &Name,
        _: i64,
    ) -> Result<vireo_core::BucketInfo, StoreError> {
        Err(StoreError::NamespaceNotFound(namespace.clone()))
    }

    async fn list_buckets(&self, _: &Name) -> Result<Vec<vireo_core::BucketInfo>, StoreError> {
        Ok(Vec::new())
    }

    async fn bucket(
        &self,
        bucket: &vireo_core::BucketId,
    ) -> Result<vireo_core::BucketInfo, StoreError> {
        Err(no_bucket(bucket))
    }

    async fn delete_bucket(&self, bucket: &vireo_core::BucketId) -> Result<(), StoreError> {
        Err(no_bucket(bucket))
    }

    async fn put_object(
        &self,
        bucket: &vireo_core::BucketId,
        _: &str,
        _: vireo_core::NewObject,
        _: vireo_core::ObjectBody,
    ) -> Result<vireo_core::ObjectInfo, StoreError> {
        Err(no_bucket(bucket))
    }

    async fn head_object(
        &self,
        bucket: &vireo_core::BucketId,
        _: &str,
    ) -> Result<Option<vireo_core::ObjectInfo>, StoreError> {
        Err(no_bucket(bucket))
    }

    async fn get_object(
        &self,
        bucket: &vireo_core::BucketId,
        _: &str,
        _: Option<vireo_core::ByteRange>,
    ) -> Result<Option<vireo_core::ObjectRead>, StoreError> {
        Err(no_bucket(bucket))
    }

    async fn delete_object(
        &self,
        bucket: &vireo_core::BucketId,
        _: &str,
        _: vireo_core::EventBounds,
    ) -> Result<bool, StoreError> {
        Err(no_bucket(bucket))
    }

    async fn set_notification(
        &self,
        bucket: &vireo_core::BucketId,
        _: &vireo_core::BucketNotification,
    ) -> Result<(), StoreError> {
        Err(no_bucket(bucket))
    }

    async fn notifications(
        &self,
        bucket: &vireo_core::BucketId,
    ) -> Result<Vec<vireo_core::BucketNotification>, StoreError> {
        Err(no_bucket(bucket))
    }

    async fn delete_notification(
        &self,
        bucket: &vireo_core::BucketId,
        _: &Name,
    ) -> Result<bool, StoreError> {
        Err(no_bucket(bucket))
    }

    async fn list_objects(
        &self,
        bucket: &vireo_core::BucketId,
        _: &vireo_core::ObjectListing,
    ) -> Result<vireo_core::ObjectPage, StoreError> {
        Err(no_bucket(bucket))
    }
}

fn no_bucket(bucket: &vireo_core::BucketId) -> StoreError {
    StoreError::BucketNotFound {
        namespace: bucket.namespace.clone(),
        bucket: bucket.bucket.clone(),
    }
}
