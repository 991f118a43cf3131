using Crate.Training;

namespace Crate.Training.Tests;

/// <summary>
/// Runs before any test touches libtorch: test runs share two cores with other work, where spinning OpenMP
/// threads slow libtorch several-fold (see <see cref="OpenMpWaitPolicy"/>).
/// </summary>
[SetUpFixture]
public sealed class PassiveOpenMp
{
    [OneTimeSetUp]
    public void PreferPassiveWaiting() => OpenMpWaitPolicy.PreferPassive();
}
