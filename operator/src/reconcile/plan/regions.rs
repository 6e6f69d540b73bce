//! Where AWS regions are, to send a failed region's geographies to the nearest healthy one.
//! Coordinates are the approximate location of each region's metro area.

/// (region, latitude, longitude)
const REGIONS: &[(&str, f64, f64)] = &[
    ("us-east-1", 38.9, -77.4),
    ("us-east-2", 40.0, -83.0),
    ("us-west-1", 37.4, -121.9),
    ("us-west-2", 45.8, -119.7),
    ("ca-central-1", 45.5, -73.6),
    ("ca-west-1", 51.0, -114.1),
    ("mx-central-1", 20.6, -100.4),
    ("sa-east-1", -23.5, -46.6),
    ("eu-west-1", 53.3, -6.3),
    ("eu-west-2", 51.5, -0.1),
    ("eu-west-3", 48.9, 2.4),
    ("eu-central-1", 50.1, 8.7),
    ("eu-central-2", 47.4, 8.5),
    ("eu-north-1", 59.3, 18.1),
    ("eu-south-1", 45.5, 9.2),
    ("eu-south-2", 41.6, -0.9),
    ("il-central-1", 32.1, 34.8),
    ("me-south-1", 26.1, 50.6),
    ("me-central-1", 25.2, 55.3),
    ("af-south-1", -33.9, 18.4),
    ("ap-south-1", 19.1, 72.9),
    ("ap-south-2", 17.4, 78.5),
    ("ap-east-1", 22.3, 114.2),
    ("ap-southeast-1", 1.4, 103.8),
    ("ap-southeast-2", -33.9, 151.2),
    ("ap-southeast-3", -6.2, 106.8),
    ("ap-southeast-4", -37.8, 145.0),
    ("ap-southeast-5", 3.1, 101.7),
    ("ap-southeast-7", 13.8, 100.5),
    ("ap-northeast-1", 35.7, 139.7),
    ("ap-northeast-2", 37.6, 127.0),
    ("ap-northeast-3", 34.7, 135.5),
    ("cn-north-1", 39.9, 116.4),
    ("cn-northwest-1", 37.5, 105.2),
    ("us-gov-west-1", 45.8, -119.7),
    ("us-gov-east-1", 40.0, -83.0),
];

fn position(region: &str) -> Option<(f64, f64)> {
    REGIONS
        .iter()
        .find(|(name, _, _)| *name == region)
        .map(|(_, lat, lon)| (*lat, *lon))
}

/// Great-circle distance in kilometres; `None` when either region is unknown.
pub fn distance_km(a: &str, b: &str) -> Option<f64> {
    let (la1, lo1) = position(a)?;
    let (la2, lo2) = position(b)?;
    let (la1, lo1, la2, lo2) = (
        la1.to_radians(),
        lo1.to_radians(),
        la2.to_radians(),
        lo2.to_radians(),
    );
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    Some(2.0 * 6371.0 * h.sqrt().asin())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_order_regions_sensibly() {
        let dublin_london = distance_km("eu-west-1", "eu-west-2").unwrap();
        let dublin_virginia = distance_km("eu-west-1", "us-east-1").unwrap();
        assert!(dublin_london < 600.0 && dublin_virginia > 5000.0);
        assert_eq!(distance_km("eu-west-1", "eu-west-1"), Some(0.0));
        assert_eq!(distance_km("eu-west-1", "mars-north-1"), None);
    }
}
