//! Where a room's Durable Object lives: a location hint from the first peer's location (the
//! platform honours a hint only when it creates the object, so later peers change nothing),
//! and the optional jurisdiction that keeps every room's data inside a region.

/// Jurisdictions a Durable Object namespace can be restricted to.
pub const JURISDICTIONS: [&str; 2] = ["eu", "fedramp"];

/// Countries Cloudflare's `me` (Middle East) location serves better than `apac`/`eeur`.
const MIDDLE_EAST: [&str; 14] = [
    "AE", "BH", "CY", "EG", "IL", "IQ", "IR", "JO", "KW", "LB", "OM", "QA", "SA", "YE",
];

/// The location hint for a client, from `request.cf`'s continent, country and longitude.
pub fn location_hint(
    continent: Option<&str>,
    country: Option<&str>,
    longitude: Option<f64>,
) -> Option<&'static str> {
    if country.is_some_and(|c| MIDDLE_EAST.contains(&c)) {
        return Some("me");
    }
    match continent? {
        // The Rockies split North America roughly at 100°W.
        "NA" => Some(if longitude.is_some_and(|l| l < -100.0) {
            "wnam"
        } else {
            "enam"
        }),
        "SA" => Some("sam"),
        // Vienna's meridian (about 16°E) splits western and eastern Europe.
        "EU" => Some(if longitude.is_some_and(|l| l > 16.0) {
            "eeur"
        } else {
            "weur"
        }),
        "AS" => Some("apac"),
        "OC" => Some("oc"),
        "AF" => Some("afr"),
        _ => None,
    }
}

/// Parses `ROOM_JURISDICTION`: empty means none.
pub fn parse_jurisdiction(v: &str) -> Result<Option<&'static str>, String> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    JURISDICTIONS
        .iter()
        .find(|j| j.eq_ignore_ascii_case(v))
        .map(|j| Some(*j))
        .ok_or_else(|| format!("{v:?} is not one of {}", JURISDICTIONS.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_by_region() {
        let cases = [
            (Some("NA"), Some("US"), Some(-122.4), Some("wnam")),
            (Some("NA"), Some("US"), Some(-74.0), Some("enam")),
            (Some("NA"), Some("US"), None, Some("enam")),
            (Some("SA"), Some("BR"), Some(-46.6), Some("sam")),
            (Some("EU"), Some("FR"), Some(2.35), Some("weur")),
            (Some("EU"), Some("PL"), Some(21.0), Some("eeur")),
            (Some("AS"), Some("JP"), Some(139.7), Some("apac")),
            (Some("AS"), Some("AE"), Some(55.3), Some("me")),
            (Some("AF"), Some("EG"), Some(31.2), Some("me")),
            (Some("OC"), Some("AU"), Some(151.2), Some("oc")),
            (Some("AF"), Some("NG"), Some(3.4), Some("afr")),
            (Some("AN"), None, None, None),
            (None, None, None, None),
        ];
        for (continent, country, longitude, hint) in cases {
            assert_eq!(
                location_hint(continent, country, longitude),
                hint,
                "{continent:?} {country:?} {longitude:?}"
            );
        }
    }

    #[test]
    fn jurisdictions() {
        assert_eq!(parse_jurisdiction(""), Ok(None));
        assert_eq!(parse_jurisdiction(" EU "), Ok(Some("eu")));
        assert_eq!(parse_jurisdiction("fedramp"), Ok(Some("fedramp")));
        assert!(parse_jurisdiction("mars").is_err());
    }
}
