//! [`BookConfig`]: every rule of the [`PeerBook`](crate::PeerBook) as a knob.

use std::time::Duration;

macro_rules! knobs {
    ($( $(#[$doc:meta])* $name:ident / $get:ident : $ty:ty = $default:expr; )*) => {
        /// The rules of a [`PeerBook`](crate::PeerBook), with the defaults of issue 14.
        ///
        /// Every knob has a by-value setter named after it and a getter (`get_…`, `is_private`
        /// as on `Config`):
        ///
        /// ```
        /// use ut_pex::BookConfig;
        /// let config = BookConfig::default().private(true).max_half_open(8);
        /// assert!(config.is_private());
        /// assert_eq!(config.get_max_half_open(), 8);
        /// assert_eq!(BookConfig::default().get_max_candidates(), 4_000);
        /// ```
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct BookConfig {
            $( pub(crate) $name: $ty, )*
        }

        impl Default for BookConfig {
            fn default() -> Self {
                Self { $( $name: $default, )* }
            }
        }

        impl BookConfig {
            $(
                $(#[$doc])*
                pub fn $name(mut self, value: $ty) -> Self {
                    self.$name = value;
                    self
                }

                #[doc = concat!("The value set by [`BookConfig::", stringify!($name), "`].")]
                pub fn $get(&self) -> $ty {
                    self.$name
                }
            )*
        }
    };
}

knobs! {
    /// Most dials in flight at once (default 16).
    max_half_open / get_max_half_open: usize = 16;
    /// Most dials into one IPv4 /24 or IPv6 /48 per [`BookConfig::subnet_window`] (default 4).
    subnet_dials / get_subnet_dials: usize = 4;
    /// The sliding window of [`BookConfig::subnet_dials`] (default 60 s).
    subnet_window / get_subnet_window: Duration = Duration::from_secs(60);
    /// Backoff after the first failure, doubled for each further one (default 60 s).
    backoff_base / get_backoff_base: Duration = Duration::from_secs(60);
    /// Consecutive failures that remove an entry (default 5).
    max_failures / get_max_failures: u8 = 5;
    /// Removed IPs remembered, so PEX cannot bring them back (default 1,024).
    max_removed / get_max_removed: usize = 1_024;
    /// Wait before redialling a disconnected peer (default 60 s).
    reconnect_delay / get_reconnect_delay: Duration = Duration::from_secs(60);
    /// New candidates one PEX source (and all PEX sources of one /24 or /48) may
    /// introduce per hour (default 200). Values below [`BookConfig::source_burst`] act as it.
    source_budget / get_source_budget: u32 = 200;
    /// New candidates a PEX source may introduce at once, however fast (default 50): one BEP 11
    /// message may carry 50.
    source_burst / get_source_burst: u32 = 50;
    /// Failed candidates that make a PEX source distrusted, unless one of its candidates
    /// ever connected (default 10).
    distrust_after / get_distrust_after: u16 = 10;
    /// Most entries (default 4,000).
    max_candidates / get_max_candidates: usize = 4_000;
    /// Most source records (default 4,096).
    max_sources / get_max_sources: usize = 4_096;
    /// Refuse PEX candidates on ports below 1024 (default true).
    refuse_low_ports / get_refuse_low_ports: bool = true;
    /// A private torrent (BEP 27): PEX, DHT and LSD sources are refused (default false).
    private / is_private: bool = false;
}

impl BookConfig {
    /// The GCRA interval of a source budget: the burst is free, the rest of the hourly budget
    /// refills evenly, so no hour ever sees more than `source_budget` new candidates.
    pub(crate) fn budget_interval(&self) -> Duration {
        let refill = self.source_budget.saturating_sub(self.source_burst).max(1);
        Duration::from_secs(3600) / refill
    }
}
