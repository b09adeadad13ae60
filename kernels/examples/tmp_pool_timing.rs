use keel_kernels::pool::{self, reference, Pool2dShape};
use std::time::Instant;
fn best(mut f: impl FnMut()) -> f64 {
    let mut b = f64::MAX;
    for _ in 0..40 {
        let t = Instant::now();
        f();
        b = b.min(t.elapsed().as_secs_f64());
    }
    b * 1e3
}
fn main() {
    let shape = Pool2dShape::square(64, 64, 32, 32, 2, 2, 0);
    let x: Vec<f32> = (0..shape.in_len()).map(|i| ((i * 7919) % 1000) as f32 - 500.0).collect();
    let dy: Vec<f32> = (0..shape.out_len()).map(|i| ((i * 31) % 100) as f32 - 50.0).collect();
    let mut y = vec![0.0; shape.out_len()];
    let mut a = vec![0u32; shape.out_len()];
    let mut dx = vec![0.0; shape.in_len()];
    let p1 = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    p1.install(|| {
        println!(
            "max fwd keel {:.2} ms",
            best(|| pool::maxpool2d_forward(&shape, &x, &mut y, &mut a).unwrap())
        );
        println!("max fwd ref  {:.2} ms", best(|| reference::maxpool2d_forward(&shape, &x, &mut y, &mut a)));
        println!(
            "max bwd keel {:.2} ms",
            best(|| pool::maxpool2d_backward(&shape, &dy, &a, &mut dx).unwrap())
        );
        println!("max bwd ref  {:.2} ms", best(|| reference::maxpool2d_backward(&shape, &dy, &a, &mut dx)));
        println!(
            "avg fwd keel {:.2} ms",
            best(|| pool::avgpool2d_forward(&shape, true, &x, &mut y).unwrap())
        );
        println!("avg fwd ref  {:.2} ms", best(|| reference::avgpool2d_forward(&shape, true, &x, &mut y)));
        println!(
            "avg bwd keel {:.2} ms",
            best(|| pool::avgpool2d_backward(&shape, true, &dy, &mut dx).unwrap())
        );
        println!("avg bwd ref  {:.2} ms", best(|| reference::avgpool2d_backward(&shape, true, &dy, &mut dx)));
    });
}
