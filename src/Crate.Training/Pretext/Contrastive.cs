using Crate.Training.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Crate.Training.Pretext;

/// <summary>
/// SimCLR-style contrastive pretraining: two augmented views of each image, pooled CRATE features through a
/// projection head (Linear-ReLU-Linear), and the InfoNCE (NT-Xent) loss that pulls the two views of an image
/// together and pushes the other 2B-2 views away.
/// </summary>
public sealed class Contrastive : nn.Module<Tensor, Tensor>, IObjective
{
    private readonly CrateModel _backbone;
    private readonly Sequential _projection;
    private readonly Generator _generator;

    /// <summary>Wraps <paramref name="backbone"/> with a projection head to <paramref name="projectionDim"/> features.</summary>
    public Contrastive(CrateModel backbone, int projectionDim = 64, double temperature = 0.5, int cropPadding = 4, long seed = 0) : base(nameof(Contrastive))
    {
        _backbone = backbone;
        Temperature = temperature;
        CropPadding = cropPadding;
        _generator = new Generator((ulong)seed);
        var d = backbone.Config.Dim;
        _projection = nn.Sequential(("0", nn.Linear(d, d)), ("1", nn.ReLU()), ("2", nn.Linear(d, projectionDim)));
        register_module("backbone", backbone);
        register_module("projection", _projection);
    }

    /// <summary>Softmax temperature of the InfoNCE loss.</summary>
    public double Temperature { get; }
    /// <summary>Padding of the random-crop augmentation, in pixels.</summary>
    public int CropPadding { get; }
    /// <summary>The network being pretrained.</summary>
    public CrateModel Backbone => _backbone;

    /// <inheritdoc />
    public Generator Generator => _generator;
    /// <inheritdoc />
    public string Name => "contrastive";
    /// <inheritdoc />
    public IReadOnlyList<Parameter> TrainableParameters => parameters().ToList();
    /// <inheritdoc />
    public void Train(bool training) => train(training);

    /// <summary>
    /// InfoNCE over 2B embeddings: for each view, cross-entropy of picking its partner among the other 2B-1 by
    /// cosine similarity / temperature; averaged over all 2B views.
    /// </summary>
    public static Tensor InfoNce(Tensor view1, Tensor view2, double temperature)
    {
        var z = nn.functional.normalize(torch.cat([view1, view2], 0), dim: 1);
        long n = view1.shape[0];
        var logits = torch.matmul(z, z.t()).div(temperature);
        logits = logits.masked_fill(torch.eye(2 * n, dtype: ScalarType.Bool), double.NegativeInfinity); // a view is not its own partner
        var partners = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]);
        return nn.functional.cross_entropy(logits, partners);
    }

    /// <summary>A random view: crop with zero padding, then a horizontal flip with probability 1/2, per image.</summary>
    public Tensor Augment(Tensor images)
    {
        var (b, h, w) = (images.shape[0], images.shape[2], images.shape[3]);
        var padded = nn.functional.pad(images, [CropPadding, CropPadding, CropPadding, CropPadding]);
        var offsets = torch.randint(0, 2 * CropPadding + 1, [b, 2], generator: _generator).data<long>().ToArray();
        var flips = torch.rand(b, generator: _generator).data<float>().ToArray();
        var views = new Tensor[b];
        for (int i = 0; i < b; i++)
        {
            var crop = padded[i].narrow(1, offsets[2 * i], h).narrow(2, offsets[2 * i + 1], w);
            views[i] = flips[i] < 0.5f ? crop.flip(2) : crop;
        }
        return torch.stack(views);
    }

    /// <inheritdoc />
    public Tensor Loss(Tensor images, Tensor labels) => forward(images);

    /// <summary>InfoNCE of two augmented views of <paramref name="images"/>.</summary>
    public override Tensor forward(Tensor images)
    {
        Tensor Embed(Tensor x) => _projection.forward(_backbone.Pool(_backbone.ForwardTokens(_backbone.Embed(x))));
        return InfoNce(Embed(Augment(images)), Embed(Augment(images)), Temperature);
    }
}
