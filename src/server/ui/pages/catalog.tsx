import { Layout } from '../layout';

export function CatalogPage(p: { oneSignal: { name: string; description: string } }): JSX.Element {
  return (
    <Layout title="Catalog" nav="catalog">
      <h1>Catalog</h1>
      <div class="cards">
        <section class="card" aria-labelledby="cat-onesignal">
          <h2 id="cat-onesignal" safe>
            {`${p.oneSignal.name} (destination)`}
          </h2>
          <p safe>{p.oneSignal.description}</p>
          <a class="button" href="/destinations/new">
            Add OneSignal destination
          </a>
        </section>
        <section class="card" aria-labelledby="cat-amplitude">
          <h2 id="cat-amplitude">Amplitude (source)</h2>
          <p>
            One source per Amplitude project: list its cohorts (Behavioral Cohorts API), sync them on a cadence, or
            receive them in real time through Amplitude's cohort webhook.
          </p>
          <a class="button" href="/sources/new">
            Add Amplitude source
          </a>
          <p class="muted">
            From a terminal: <code>ampsignal source add amplitude --name … --api-key … --secret-key … --region us</code>
            . Cohorts imported from a file need no source: <code>ampsignal cohort import --file … --name …</code>.
          </p>
        </section>
      </div>
    </Layout>
  );
}
