"""The peers' evaluation formulas transcribed in numpy / scikit-image / scipy, on HxWx3 uint8 images (what their scripts read).

EdgeConnect: knazeri/edge-connect scripts/metrics.py. CTSDG: the PSNR/SSIM code its author names (xiefan-guo/ctsdg#5),
Vious/LBAM_Pytorch test_random_batch.py with pytorch_ssim, at batch size 1."""
import numpy as np
from scipy import ndimage
from skimage.color import rgb2gray
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def read(u8):
    "An 8-bit image as the scripts hold it: uint8 / 255 in float32 (scipy.misc.imread / 255, ToTensor), here in float64."
    return (u8 / 255.0).astype(np.float32).astype(np.float64)


def edgeconnect(out8, gt8):
    "L1 % (100 x compare_mae), PSNR, SSIM of metrics.py: read /255 as float32, rgb2gray, win_size=51, data_range=1."
    p, t = rgb2gray(read(out8).astype(np.float32)), rgb2gray(read(gt8).astype(np.float32))   # gray in float32, as metrics.py
    p, t = p.astype(np.float64), t.astype(np.float64)                                        # old compare_ssim: float64
    return dict(l1=100 * np.sum(np.abs(t - p)) / np.sum(t + p), psnr=peak_signal_noise_ratio(t, p, data_range=1),
                ssim=structural_similarity(t, p, data_range=1, win_size=51))


def lbam(out8, gt8):
    "nn.L1Loss x 100, 10 log10(1/MSE), pytorch_ssim.ssim(gt*255, out*255): 11x11 Gaussian sigma 1.5, zero padding, C1=1e-4, C2=9e-4."
    a, b = read(gt8), read(out8)
    x = np.arange(11) - 5
    g = np.exp(-x ** 2 / (2 * 1.5 ** 2)); g /= g.sum()
    win = np.outer(g, g)
    f = lambda z: ndimage.correlate(z, win, mode='constant', cval=0.)
    maps = []
    for c in range(3):
        X, Y = a[..., c] * 255, b[..., c] * 255
        mx, my = f(X), f(Y)
        sxx, syy, sxy = f(X * X) - mx ** 2, f(Y * Y) - my ** 2, f(X * Y) - mx * my
        maps.append(((2 * mx * my + 0.01 ** 2) * (2 * sxy + 0.03 ** 2)) / ((mx ** 2 + my ** 2 + 0.01 ** 2) * (sxx + syy + 0.03 ** 2)))
    return dict(l1=100 * np.abs(a - b).mean(), psnr=10 * np.log10(1 / ((a - b) ** 2).mean()), ssim=float(np.mean(maps)))


def ra(out8, gt8):
    "This project's: RGB, 100 x mean |x-y|, PSNR, SSIM Gaussian sigma 1.5, population covariances (scikit-image)."
    a, b = read(gt8), read(out8)
    return dict(l1=100 * np.abs(b - a).mean(), psnr=peak_signal_noise_ratio(a, b, data_range=1),
                ssim=structural_similarity(a, b, channel_axis=-1, data_range=1, gaussian_weights=True, sigma=1.5,
                                           use_sample_covariance=False))


PEERS = dict(ra=ra, edgeconnect=edgeconnect, ctsdg=lbam)
